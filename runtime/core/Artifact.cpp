// Artifact loading: footer, FlatBuffers verifier, version, then the bounds
// of everything the runtime will index with.
#include "gai/Artifact.h"

#include "core/TensorParallel.h"
#include "gai/FloatConvert.h"
#include "gai/SafeFile.h"
#include "gai/WeightSet.h"

#include "core/Commands.h"
#include "core/Tables.h"
#include "format/artifact_generated.h"

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
// XXH3 inline: the runtime then needs no libxxhash where it runs.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace gai {

int64_t dtypeBits(format::DType dtype) {
  switch (dtype) {
  case format::DType::F32:
  case format::DType::I32:
    return 32;
  case format::DType::F16:
  case format::DType::BF16:
    return 16;
  case format::DType::F8E4M3:
  case format::DType::I8:
  case format::DType::I1:
    return 8;
  case format::DType::I4:
    return 4;
  }
  return 0;
}

DType hostDType(format::DType dtype) {
  switch (dtype) {
  case format::DType::BF16: return DType::BF16;
  case format::DType::F16: return DType::F16;
  case format::DType::I32: return DType::I32;
  case format::DType::I8: return DType::I8;
  case format::DType::I1: return DType::Bool;
  default: return DType::F32;
  }
}

bool hasTrainableParameters(const format::Artifact &root) {
  if (root.state())
    for (const format::TensorDesc *t : *root.state())
      if (t->role() == format::TensorRole::Parameter)
        return true;
  return false;
}

Status fitsHostMemory(int64_t bytes, const std::string &what) {
  long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGE_SIZE);
  int64_t memory = pages > 0 && pageSize > 0 ? static_cast<int64_t>(pages) * pageSize : -1;
  if (bytes >= 0 && (memory < 0 || bytes <= memory))
    return Status::ok();
  return Status::error(what + " needs " +
                       (bytes < 0 ? std::string("more bytes than fit in 64 bits")
                                  : std::to_string(bytes) + " bytes") +
                       ", the machine has " + std::to_string(memory));
}

int64_t packedSize(const flatbuffers::Vector<
                   flatbuffers::Offset<format::TensorDesc>> *tensors) {
  int64_t total = 0;
  if (tensors)
    for (const format::TensorDesc *t : *tensors)
      if (t->buffer())
        total = std::max(total, t->buffer()->offset() + t->buffer()->size());
  return total;
}

namespace {

constexpr char kFooterMagic[4] = {'G', 'A', 'I', 'F'};

uint64_t readU64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

void writeU64(std::vector<uint8_t> &out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

/// Checks the buffers of one entry point against the sizes of their spaces.
class BoundsChecker {
public:
  BoundsChecker(std::string where, int64_t arena, int64_t weights,
                int64_t state, int64_t input, int64_t output)
      : where(std::move(where)), sizes{arena, weights, state, input, output} {}

  Status check(const format::BufferRef *ref, const std::string &what,
               bool optional = false) const {
    if (!ref) {
      if (optional)
        return Status::ok();
      return Status::error(where + ": " + what + " has no buffer");
    }
    if (optional && ref->size() == 0)
      return Status::ok();
    auto space = static_cast<size_t>(ref->space());
    if (space >= 5)
      return Status::error(where + ": " + what + " names an unknown space");
    int64_t limit = sizes[space];
    if (ref->offset() < 0 || ref->size() < 0 || ref->offset() > limit ||
        ref->size() > limit - ref->offset())
      return Status::error(
          where + ": " + what + " [" + format::EnumNameSpace(ref->space()) +
          " " + std::to_string(ref->offset()) + " + " +
          std::to_string(ref->size()) + "] is outside its space of " +
          std::to_string(limit) + " bytes");
    return Status::ok();
  }

  Status checkTensor(const format::TensorDesc *t) const {
    std::string name = t->name() ? t->name()->str() : "?";
    int64_t elements = 1;
    if (t->shape())
      for (int64_t d : *t->shape()) {
        if (d < 0 || (d > 0 && elements > INT64_MAX / d))
          return Status::error(where + ": tensor '" + name +
                               "' has a bad shape");
        elements *= d;
      }
    int64_t bits = dtypeBits(t->dtype());
    if (bits == 0 || !t->buffer())
      return Status::error(where + ": tensor '" + name +
                           "' has no dtype or buffer");
    int64_t elementBits = 0;
    if (__builtin_mul_overflow(elements, bits, &elementBits) || elementBits > INT64_MAX - 7)
      return Status::error(where + ": tensor '" + name + "' has a bad shape (" +
                           std::to_string(elements) + " elements overflow its size)");
    int64_t bytes = (elementBits + 7) / 8;
    if (t->buffer()->size() != bytes)
      return Status::error(where + ": tensor '" + name + "' needs " +
                           std::to_string(bytes) + " bytes, its buffer has " +
                           std::to_string(t->buffer()->size()));
    return check(t->buffer(), "tensor '" + name + "'");
  }

  std::string where;
  int64_t sizes[5];
};

/// A tensor-parallel weight's slices: one a rank, each inside the weights.
Status checkRankOffsets(const format::TensorDesc &t, int64_t weightsSize) {
  if (!t.rank_offsets())
    return Status::ok();
  std::string name = "weights: tensor '" + (t.name() ? t.name()->str() : "?") + "'";
  int64_t size = t.buffer() ? t.buffer()->size() : 0;
  if (t.rank_offsets()->size() == 0 || t.rank_offsets()->size() > (1u << 20))
    return Status::error(name + ": rank_offsets must name 1 to 2^20 slices");
  for (int64_t offset : *t.rank_offsets())
    if (offset < 0 || offset > weightsSize || size > weightsSize - offset)
      return Status::error(name + ": a rank's slice at " + std::to_string(offset) +
                           " falls outside the weights' " + std::to_string(weightsSize) +
                           " bytes");
  return Status::ok();
}

/// A tensor-parallel state tensor: its segments inside the whole tensor,
/// which is this rank's (or its ZeRO share's whole) with the axis grown by
/// the blocks the other tp ranks hold, one a rank for each block kept.
/// An empty `mesh` (weights bound before the mesh is read) checks all but
/// the count of tp ranks. `space` names the tensor's list in messages.
Status checkTensorParallel(const format::TensorDesc &t, const std::vector<int64_t> &mesh,
                           const char *space = "state") {
  if (!t.tp_shape() && !t.tp_segments())
    return Status::ok();
  std::string name = std::string(space) + ": tensor '" + (t.name() ? t.name()->str() : "?") + "'";
  auto fail = [&](const std::string &what) { return Status::error(name + ": " + what); };
  const auto *local = t.shard_shape() ? t.shard_shape() : t.shape();
  if (!t.tp_shape() || !t.tp_segments() || !local || (!mesh.empty() && mesh.size() != 2) ||
      t.tp_shape()->size() != local->size() || t.tp_segments()->size() % 3 != 0 ||
      t.tp_segments()->size() == 0)
    return fail("tp_shape and tp_segments come together, on a dp×tp mesh, with the "
                "tensor's rank");
  int64_t axis = t.tp_axis(), keep = t.tp_keep(), replicas = t.tp_replicas();
  if (axis < 0 || static_cast<size_t>(axis) >= local->size() || keep < 1 || replicas < 1 ||
      replicas > (int64_t{1} << 20))
    return fail("tp_axis, tp_keep or tp_replicas is out of range");
  int64_t ranks = mesh.empty() ? t.tp_segments()->Get(1) / keep * replicas : mesh[1];
  int64_t grown = local->Get(static_cast<flatbuffers::uoffset_t>(axis)), end = 0;
  for (size_t i = 0; i < t.tp_segments()->size(); i += 3) {
    int64_t offset = t.tp_segments()->Get(i), units = t.tp_segments()->Get(i + 1),
            size = t.tp_segments()->Get(i + 2), blocks = 0;
    if (offset < end || units < 1 || size < 1 || units % keep != 0 ||
        units / keep * replicas != ranks ||
        __builtin_mul_overflow(units - keep, size, &blocks) ||
        __builtin_add_overflow(grown, blocks, &grown))
      return fail("tp_segments: expected ordered segments of tp / tp_replicas × tp_keep blocks");
    end = offset + units * size;
  }
  for (size_t d = 0; d < local->size(); ++d) {
    int64_t want = static_cast<int64_t>(d) == axis ? grown : local->Get(d);
    if (t.tp_shape()->Get(d) != want || end > t.tp_shape()->Get(axis))
      return fail("tp_shape does not hold this rank's slice and the others' blocks");
  }
  return Status::ok();
}

/// A sharded state tensor (shard_shape, shard_axes) is one flat share of
/// its whole tensor over a group of `mesh`: ceil(elements / group) long.
Status checkShard(const format::TensorDesc &t, const std::vector<int64_t> &mesh) {
  if (!t.shard_shape() && !t.shard_axes())
    return Status::ok();
  std::string name = "state: tensor '" + (t.name() ? t.name()->str() : "?") + "'";
  if (!t.shard_shape() || !t.shard_axes() || t.shard_axes()->size() == 0)
    return Status::error(name + ": shard_shape and shard_axes come together");
  int64_t group = 1, whole = 1;
  uint32_t seen = 0;
  for (int16_t axis : *t.shard_axes()) {
    if (axis < 0 || static_cast<size_t>(axis) >= mesh.size() || (seen >> axis & 1u))
      return Status::error(name + ": shard axis " + std::to_string(axis) +
                           " is repeated or not an axis of the mesh");
    seen |= 1u << axis;
    group *= mesh[static_cast<size_t>(axis)]; // the mesh's product fits (checked)
  }
  for (int64_t d : *t.shard_shape())
    if (d < 0 || __builtin_mul_overflow(whole, d, &whole))
      return Status::error(name + ": shard_shape is negative or overflows");
  int64_t share = 0;
  if (t.shape())
    share = t.shape()->size() == 1 ? t.shape()->Get(0) : -1;
  if (share != (whole + group - 1) / group)
    return Status::error(name + ": expected one dimension of " +
                         std::to_string((whole + group - 1) / group) +
                         " elements, its share of the whole tensor");
  return Status::ok();
}


} // namespace

// ChecksumAvx2.cpp: the same hash, vectorised for AVX2.
uint64_t checksum64Avx2(const void *data, size_t size);
void checksumUpdateAvx2(void *state, const void *data, size_t size);

static bool haveAvx2() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  return avx2;
}

uint64_t checksum64(const uint8_t *data, size_t size) {
  return haveAvx2() ? checksum64Avx2(data, size) : XXH3_64bits(data, size);
}

// A second thread hashes each chunk just after it is read, while it is
// still in cache, so verifying adds little to reading.
Status readFile(const std::string &path, std::vector<uint8_t> &out,
                uint64_t *checksum) {
  // A directory, FIFO or device is refused (SafeFile's rule for every input),
  // and a FIFO that took the file's place since cannot block the open.
  if (Status s = checkRegularFile(path); !s)
    return s;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return Status::error(path + ": cannot open: " + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat info;
  if (::fstat(fd, &info) != 0)
    return Status::error(path + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(info.st_mode))
    return Status::error(path + ": expected a regular file");
  out.resize(static_cast<size_t>(info.st_size));

  std::mutex mutex;
  std::condition_variable readMore;
  size_t ready = 0;
  bool done = false;
  std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t *)> state(
      checksum ? XXH3_createState() : nullptr, XXH3_freeState);
  if (checksum && !state)
    return Status::error(path + ": out of memory");
  std::thread hasher;
  if (checksum)
    hasher = std::thread([&] {
      XXH3_64bits_reset(state.get());
      for (size_t hashed = 0;;) {
        size_t upTo;
        bool last;
        {
          std::unique_lock<std::mutex> lock(mutex);
          readMore.wait(lock, [&] { return ready > hashed || done; });
          upTo = ready;
          last = done;
        }
        if (haveAvx2())
          checksumUpdateAvx2(state.get(), out.data() + hashed, upTo - hashed);
        else
          XXH3_64bits_update(state.get(), out.data() + hashed, upTo - hashed);
        hashed = upTo;
        if (last)
          break;
      }
      *checksum = XXH3_64bits_digest(state.get());
    });
  // 1 MiB at a time: still in cache when the hasher reads it.
  constexpr size_t kChunk = size_t(1) << 20;
  int error = 0;
  size_t filled = 0;
  while (filled < out.size()) {
    ssize_t n = ::read(fd, out.data() + filled, std::min(kChunk, out.size() - filled));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      error = n < 0 ? errno : 0;
      break;
    }
    filled += static_cast<size_t>(n);
    std::lock_guard<std::mutex> lock(mutex);
    ready = filled;
    readMore.notify_one();
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
    readMore.notify_one();
  }
  if (hasher.joinable())
    hasher.join();
  if (error)
    return Status::error(path + ": read error: " + std::strerror(error));
  if (filled != out.size())
    return Status::error(path + ": the file shrank while it was read");
  return Status::ok();
}

std::vector<uint8_t> sealArtifact(const uint8_t *flatbuffer, size_t size) {
  std::vector<uint8_t> out(flatbuffer, flatbuffer + size);
  out.insert(out.end(), kFooterMagic, kFooterMagic + 4);
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<uint8_t>(kArtifactSchemaVersion >> (8 * i)));
  writeU64(out, size);
  writeU64(out, checksum64(flatbuffer, size));
  return out;
}

const format::Artifact &LoadedArtifact::root() const {
  return *format::GetArtifact(bytes_.get());
}

/// "[32, 64]", as the compiler's weight check writes shapes.
static std::string shapeText(const std::vector<int64_t> &shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

/// Whether an artifact's weight of `dtype` holds quantized values.
static bool quantizedDType(format::DType dtype) {
  return dtype == format::DType::I8 || dtype == format::DType::I4 ||
         dtype == format::DType::F8E4M3;
}

/// What to say when weights for a quantized artifact are float.
static const char *const kQuantizedHint =
    "; the artifact is quantized: give it the weights that gaic --quantize "
    "--external-weights wrote beside it (ARTIFACT.weights.safetensors)";
/// What to say when weights for a 2:4 artifact are dense: its weights are
/// their kept halves and positions (`.meta`).
static const char *const kSparseHint =
    "; the artifact is 2:4 sparse: give it the weights that gaic --prune=2:4 "
    "--external-weights wrote beside it, or compile these with gaic --prune=2:4 --weights";

static bool isSparseMeta(const std::string &name) {
  return name.size() > 5 && name.compare(name.size() - 5, 5, ".meta") == 0;
}

/// How weight `t` splits over tensor-parallel ranks when the runtime cuts
/// it from whole weights (no slices stored); nullopt for any other.
static std::optional<TensorParallelSplit> runTimeSplitOf(const format::TensorDesc &t) {
  if (!t.tp_shape() || t.rank_offsets())
    return std::nullopt;
  TensorParallelSplit split;
  split.wholeShape.assign(t.tp_shape()->begin(), t.tp_shape()->end());
  if (t.tp_segments())
    split.segments.assign(t.tp_segments()->begin(), t.tp_segments()->end());
  split.axis = t.tp_axis();
  split.keep = t.tp_keep();
  split.replicas = t.tp_replicas();
  return split;
}

static const std::pair<format::DType, DType> kSameDType[] = {
    {format::DType::F32, DType::F32}, {format::DType::F16, DType::F16},
    {format::DType::BF16, DType::BF16}, {format::DType::F8E4M3, DType::F8E4M3},
    {format::DType::I8, DType::I8}, {format::DType::I32, DType::I32}};

/// Tensor-parallel rank `rank`'s part of `view` into `out`, as the
/// artifact's `dtype` (`view`'s, or a float type it converts to).
static Status copyRankPart(const TensorView &view, const TensorParallelSplit &split,
                           int64_t rank, format::DType dtype, uint8_t *out, int64_t outBytes) {
  std::vector<uint8_t> part = split.slice(view.data, dtypeSize(view.dtype), rank);
  size_t count = part.size() / dtypeSize(view.dtype);
  DType to = view.dtype;
  for (auto [ours, theirs] : kSameDType)
    if (ours == dtype)
      to = theirs;
  if (static_cast<int64_t>(count * dtypeSize(to)) != outBytes)
    return Status::error("weights: tensor '" + view.name + "': its slice has " +
                         std::to_string(count) + " elements, its buffer " +
                         std::to_string(outBytes) + " bytes");
  if (to != view.dtype)
    convertFloats(part.data(), view.dtype, out, to, count);
  else
    std::memcpy(out, part.data(), part.size());
  return Status::ok();
}

/// The artifact's weights blob rebuilt from a safetensors file, an index of
/// shards or a model directory (WeightSet::open), by name. A weight split
/// over tensor-parallel ranks is taken whole from the file and rank 0's
/// part bound; `kept` then holds the file for the other ranks'.
static Status bindWeights(const format::Weights &w, int64_t size,
                          const std::string &weightsPath, std::vector<uint8_t> &blob,
                          std::shared_ptr<const WeightSet> &kept) {
  auto opened = WeightSet::open(weightsPath);
  if (!opened)
    return opened.status();
  auto file = std::make_shared<const WeightSet>(std::move(*opened));
  blob.assign(static_cast<size_t>(size), 0);
  const auto &kSame = kSameDType;
  if (w.tensors())
    for (const format::TensorDesc *t : *w.tensors()) {
      std::string name = t->name() ? t->name()->str() : "";
      if (!t->buffer())
        return Status::error("weight '" + name + "' has no buffer");
      const TensorView *view = file->find(name);
      if (!view) {
        // A quantized weight absent from a float file (a tied head's copy).
        return Status::error(file->path() + ": no tensor '" + name +
                             "', which the model needs" +
                             (isSparseMeta(name)             ? kSparseHint
                              : quantizedDType(t->dtype()) ? kQuantizedHint
                                                             : ""));
      }
      std::vector<int64_t> shape;
      if (t->shape())
        shape.assign(t->shape()->begin(), t->shape()->end());
      int64_t elements = 1;
      for (int64_t d : shape)
        elements *= d;
      // A tensor-parallel weight: the file holds it whole.
      std::optional<TensorParallelSplit> split = runTimeSplitOf(*t);
      if (split) {
        if (Status s = checkTensorParallel(*t, {}, "weights"); !s)
          return s;
        shape = split->wholeShape;
      }
      bool dtypeOk = false;
      for (auto [ours, theirs] : kSame)
        dtypeOk |= t->dtype() == ours && view->dtype == theirs;
      // int4 is stored two a byte: u8 [n, k / 2] for [n, k].
      const bool packedInt4 = t->dtype() == format::DType::I4 && view->dtype == DType::U8 &&
                              shape.size() == 2 && view->shape.size() == 2 &&
                              view->shape[0] == shape[0] && view->shape[1] * 2 == shape[1];
      // Float weights of another precision are converted (f32 → bf16).
      std::optional<DType> convertTo;
      for (auto [ours, theirs] : kSame)
        if (!dtypeOk && t->dtype() == ours && canConvertFloats(view->dtype, theirs))
          convertTo = theirs;
      int64_t expectedBytes =
          elements * static_cast<int64_t>(dtypeSize(convertTo ? *convertTo : view->dtype));
      if (!packedInt4 && ((!dtypeOk && !convertTo) || shape != view->shape ||
                          expectedBytes != t->buffer()->size())) {
        const bool wantsQuantized = quantizedDType(t->dtype());
        const bool hasQuantized = !isFloat(view->dtype);
        std::string hint;
        if (wantsQuantized && !hasQuantized)
          hint = kQuantizedHint;
        else if (!wantsQuantized && hasQuantized && isFloat(hostDType(t->dtype())))
          hint = "; these weights are quantized: compile the model with the gaic --quantize "
                 "that made them";
        else if (shape.size() == 2 && view->shape.size() == 2 &&
                 view->shape[0] == shape[0] && view->shape[1] == 2 * shape[1])
          hint = kSparseHint;
        return Status::error(file->path() + ": tensor '" + name + "' is " +
                             dtypeName(view->dtype) + " " + shapeText(view->shape) +
                             ", the model expects " + format::EnumNameDType(t->dtype()) +
                             " " + shapeText(shape) + hint);
      }
      if (packedInt4 && view->byteSize != static_cast<size_t>(t->buffer()->size()))
        return Status::error(file->path() + ": tensor '" + name + "' has " +
                             std::to_string(view->byteSize) + " bytes, the model expects " +
                             std::to_string(t->buffer()->size()));
      if (t->buffer()->offset() + t->buffer()->size() > size)
        return Status::error("tensor '" + name + "' lies outside the weights");
      if (split) {
        if (Status s = copyRankPart(*view, *split, 0, t->dtype(),
                                    blob.data() + t->buffer()->offset(), t->buffer()->size());
            !s)
          return s;
        kept = file;
      } else if (convertTo)
        convertFloats(view->data, view->dtype, blob.data() + t->buffer()->offset(),
                      *convertTo, static_cast<size_t>(view->numElements()));
      else
        std::memcpy(blob.data() + t->buffer()->offset(), view->data,
                    view->byteSize);
    }
  return Status::ok();
}

StatusOr<LoadedArtifact> LoadedArtifact::load(const std::string &path,
                                              const std::string &weightsPath) {
  std::vector<uint8_t> bytes;
  if (Status s = readFile(path, bytes); !s)
    return s;
  size_t slash = path.find_last_of('/');
  std::string directory =
      slash == std::string::npos ? "." : path.substr(0, slash);
  return fromBytes(std::move(bytes), path, directory, weightsPath);
}

StatusOr<LoadedArtifact> LoadedArtifact::loadTables(const std::string &path) {
  std::vector<uint8_t> bytes;
  if (Status s = readFile(path, bytes); !s)
    return s;
  return verify(std::move(bytes), path, ".", "", /*loadWeights=*/false);
}

StatusOr<LoadedArtifact> LoadedArtifact::fromBytes(
    std::vector<uint8_t> input, const std::string &name,
    const std::string &directory, const std::string &weightsPath) {
  return verify(std::move(input), name, directory, weightsPath, true);
}

StatusOr<LoadedArtifact> LoadedArtifact::verify(
    std::vector<uint8_t> input, const std::string &name,
    const std::string &directory, const std::string &weightsPath,
    bool loadWeights) {
  auto fail = [&](const std::string &what) {
    return Status::error(name + ": " + what);
  };
  // One aligned copy; everything below reads it.
  size_t rounded = (input.size() + 63) / 64 * 64 + 64;
  std::shared_ptr<uint8_t> aligned(
      static_cast<uint8_t *>(std::aligned_alloc(64, rounded)), std::free);
  if (!aligned)
    return fail("out of memory");
  std::memcpy(aligned.get(), input.data(), input.size());
  struct View {
    const uint8_t *ptr;
    size_t n;
    const uint8_t *data() const { return ptr; }
    size_t size() const { return n; }
  } bytes{aligned.get(), input.size()};
  if (bytes.size() < kArtifactFooterSize ||
      std::memcmp(bytes.data() + bytes.size() - kArtifactFooterSize,
                  kFooterMagic, 4) != 0)
    return fail("not a gai artifact, or truncated (no footer)");
  const uint8_t *footer = bytes.data() + bytes.size() - kArtifactFooterSize;
  uint32_t version = footer[4] | footer[5] << 8 | footer[6] << 16 |
                     static_cast<uint32_t>(footer[7]) << 24;
  uint64_t payload = readU64(footer + 8);
  if (payload != bytes.size() - kArtifactFooterSize)
    return fail("truncated or padded: the footer records " +
                std::to_string(payload) + " bytes of payload, the file has " +
                std::to_string(bytes.size() - kArtifactFooterSize));
  if (checksum64(bytes.data(), payload) != readU64(footer + 16))
    return fail("checksum mismatch: the file is corrupt");
  if (version != kArtifactSchemaVersion)
    return fail("schema version " + std::to_string(version) +
                ", this runtime reads version " +
                std::to_string(kArtifactSchemaVersion) + "; recompile with "
                "a matching gaic");

  flatbuffers::Verifier verifier(bytes.data(), payload);
  if (!format::VerifyArtifactBuffer(verifier))
    return fail("the FlatBuffer does not verify (wrong file identifier or "
                "corrupt tables)");
  const format::Artifact *root = format::GetArtifact(bytes.data());
  if (root->schema_version() != kArtifactSchemaVersion)
    return fail("schema version " + std::to_string(root->schema_version()) +
                " in the table does not match the footer's");

  LoadedArtifact artifact;
  // Weights: embedded, or an external file with a recorded size and checksum.
  if (const format::Weights *w = root->weights()) {
    if (!loadWeights) {
      // The recorded size, so every other check still runs.
      artifact.weightsSize_ = w->embedded() && w->embedded()->size() > 0
                                  ? static_cast<int64_t>(w->embedded()->size())
                              : w->external() ? w->external()->size()
                                              : 0;
    } else if (!weightsPath.empty()) {
      int64_t size = w->embedded() && w->embedded()->size() > 0
                         ? static_cast<int64_t>(w->embedded()->size())
                     : w->external() ? w->external()->size()
                                     : 0;
      auto data = std::make_shared<std::vector<uint8_t>>();
      if (size < 0)
        return fail("negative weights size");
      if (Status s = fitsHostMemory(size, "the weights"); !s)
        return fail(s.message());
      if (Status s = bindWeights(*w, size, weightsPath, *data, artifact.boundWeights_); !s)
        return s;
      artifact.externalWeights_ = data;
      artifact.weights_ = data->data();
      artifact.weightsSize_ = size;
    } else if (w->embedded() && w->embedded()->size() > 0) {
      artifact.weights_ = w->embedded()->data();
      artifact.weightsSize_ = w->embedded()->size();
    } else if (const format::ExternalWeights *ext = w->external()) {
      std::string path = ext->path() ? ext->path()->str() : "";
      if (path.empty() && ext->size() > 0 && !hasTrainableParameters(*root))
        return fail("the artifact was compiled without weights; pass "
                    "--weights FILE");
      if (!path.empty()) { // else: a model with no parameters
        if (path[0] != '/')
          path = directory + "/" + path;
        auto data = std::make_shared<std::vector<uint8_t>>();
        uint64_t checksum = 0;
        if (Status s = readFile(path, *data, &checksum); !s)
          return fail("external weights: " + s.message());
        if (static_cast<int64_t>(data->size()) != ext->size())
          return fail("external weights " + path + " have " +
                      std::to_string(data->size()) + " bytes, the artifact "
                      "expects " + std::to_string(ext->size()));
        if (checksum != ext->checksum())
          return fail("external weights " + path +
                      " do not match the artifact's checksum");
        artifact.externalWeights_ = data;
        artifact.weights_ = data->data();
        artifact.weightsSize_ = static_cast<int64_t>(data->size());
        artifact.externalPath_ = path;
      }
    }
    BoundsChecker bounds("weights", 0, artifact.weightsSize_, 0, 0, 0);
    if (w->tensors() && (artifact.weights_ || !loadWeights))
      for (const format::TensorDesc *t : *w->tensors()) {
        if (Status s = bounds.checkTensor(t); !s)
          return fail(s.message());
        if (Status s = checkRankOffsets(*t, artifact.weightsSize_); !s)
          return fail(s.message());
      }
  }

  // Each kernel's signature: a launch must pass the buffers it reads.
  KernelSignatures kernels;
  if (const format::KernelModule *k = root->kernels(); k && k->symbols()) {
    const auto *signatures = k->signatures();
    if (!signatures || signatures->size() != k->symbols()->size())
      return fail("the kernels have no signatures, or not one per symbol; recompile with a "
                  "matching gaic");
    for (const format::KernelSignature *s : *signatures) {
      kernels.emplace_back();
      if (s->arg_bytes())
        for (int64_t bytes : *s->arg_bytes()) {
          if (bytes < 0)
            return fail("a kernel's signature has a negative size");
          kernels.back().push_back(bytes);
        }
    }
  }
  // Far past any plan's, and short of where sums of sizes could overflow.
  constexpr int64_t kMostSpaceBytes = int64_t{1} << 50;
  if (root->state_size() < 0 || root->state_size() > kMostSpaceBytes)
    return fail("state size " + std::to_string(root->state_size()) + " is outside [0, 2^50]");
  if (root->state()) {
    BoundsChecker bounds("state", 0, 0, root->state_size(), 0, 0);
    for (const format::TensorDesc *t : *root->state())
      if (Status s = bounds.checkTensor(t); !s)
        return fail(s.message());
  }
  std::vector<int64_t> mesh;
  if (root->options() && root->options()->mesh()) {
    constexpr size_t kMostMeshAxes = 8;
    constexpr int64_t kMostRanks = int64_t{1} << 20;
    int64_t ranks = 1;
    for (int64_t d : *root->options()->mesh()) {
      if (d < 1 || __builtin_mul_overflow(ranks, d, &ranks) || ranks > kMostRanks ||
          mesh.size() == kMostMeshAxes)
        return fail("options.mesh: expected at most " + std::to_string(kMostMeshAxes) +
                    " positive axes of at most 2^20 ranks in all");
      mesh.push_back(d);
    }
  }
  if (root->state())
    for (const format::TensorDesc *t : *root->state())
      if (Status s = checkShard(*t, mesh); !s)
        return fail(s.message());
      else if (Status s2 = checkTensorParallel(*t, mesh); !s2)
        return fail(s2.message());
  if (root->weights() && root->weights()->tensors())
    for (const format::TensorDesc *t : *root->weights()->tensors())
      if (Status s = checkTensorParallel(*t, mesh, "weights"); !s)
        return fail(s.message());
  auto entries = std::make_shared<std::vector<DecodedEntry>>();
  if (root->entries())
    for (const format::EntryPoint *entry : *root->entries()) {
      std::string where =
          "entry '" + (entry->name() ? entry->name()->str() : "?") + "'";
      if (!entry->name())
        return fail("an entry point has no name");
      if (entry->arena_size() < 0 || entry->arena_size() > kMostSpaceBytes)
        return fail(where + ": arena size " + std::to_string(entry->arena_size()) +
                    " is outside [0, 2^50]");
      BoundsChecker bounds(where, entry->arena_size(), artifact.weightsSize_,
                           root->state_size(), packedSize(entry->inputs()),
                           packedSize(entry->outputs()));
      for (auto *tensors : {entry->inputs(), entry->outputs()})
        if (tensors)
          for (const format::TensorDesc *t : *tensors)
            if (Status s = bounds.checkTensor(t); !s)
              return fail(s.message());
      StatusOr<DecodedEntry> decoded =
          decodeEntry(*entry, {entry->arena_size(), artifact.weightsSize_, root->state_size(),
                               packedSize(entry->inputs()), packedSize(entry->outputs())},
                      kernels, mesh);
      if (!decoded)
        return fail(decoded.status().message());
      entries->push_back(std::move(*decoded));
    }
  artifact.entries_ = std::move(entries);

  artifact.bytes_ = std::move(aligned);
  return artifact;
}

} // namespace gai

namespace gai {

Status LoadedArtifact::useTensorParallelRank(int64_t rank, int64_t ranks) {
  const format::Weights *w = root().weights();
  if (!w || !w->tensors() || !weights_)
    return Status::ok();
  // The commands read the weights where rank 0's slices lie; the other
  // ranks' slices are stored after all of them, and a rank keeps only that
  // first part, its own slices in place.
  int64_t readEnd = 0;
  for (const format::TensorDesc *t : *w->tensors())
    readEnd = std::max(readEnd, t->buffer()->offset() + t->buffer()->size());
  std::shared_ptr<std::vector<uint8_t>> mine;
  for (const format::TensorDesc *t : *w->tensors()) {
    std::optional<TensorParallelSplit> split = runTimeSplitOf(*t);
    if (split && boundWeights_) {
      const TensorView *view = boundWeights_->find(t->name()->str());
      // The bound blob is this artifact's own: cut into it in place.
      if (!mine)
        mine = externalWeights_ && externalWeights_.use_count() == 1 &&
                       externalWeights_->data() == weights_
                   ? externalWeights_
                   : std::make_shared<std::vector<uint8_t>>(weights_, weights_ + weightsSize_);
      for (size_t i = 1; i < split->segments.size(); i += 3)
        if (split->keep * ranks != split->segments[i] * split->replicas)
          return Status::error("weights: tensor '" + t->name()->str() + "' splits " +
                               std::to_string(split->segments[i]) + " units into parts of " +
                               std::to_string(split->keep) + ", not over tp=" +
                               std::to_string(ranks));
      if (Status s = copyRankPart(*view, *split, rank, t->dtype(),
                                  mine->data() + t->buffer()->offset(), t->buffer()->size());
          !s)
        return s;
      continue;
    }
    if (!t->rank_offsets())
      continue;
    if (static_cast<int64_t>(t->rank_offsets()->size()) != ranks)
      return Status::error("weights: tensor '" + t->name()->str() + "' has " +
                           std::to_string(t->rank_offsets()->size()) +
                           " tensor-parallel slices for a mesh of tp=" + std::to_string(ranks));
    if (!mine)
      mine = std::make_shared<std::vector<uint8_t>>(weights_, weights_ + readEnd);
    std::memcpy(mine->data() + t->buffer()->offset(), weights_ + t->rank_offsets()->Get(rank),
                static_cast<size_t>(t->buffer()->size()));
  }
  if (mine) {
    externalWeights_ = mine;
    weights_ = mine->data();
    weightsSize_ = std::min<int64_t>(readEnd, static_cast<int64_t>(mine->size()));
    boundWeights_.reset(); // every rank's part is cut: the file can go
  }
  return Status::ok();
}

} // namespace gai
