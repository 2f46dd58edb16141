// conformance-check: runs every case conformance-cases wrote into a
// directory on one device and compares each output with the reference
// interpreter's, and checks that the cases cover every command. Needs only
// the runtime, so the CUDA half runs where MLIR is absent.
//
//   conformance-check [--device=cpu|cuda] [--dir=DIR] [gtest flags]
//
// Without --dir the cases are GAI_CONFORMANCE_CPU_DIR's on the CPU and
// $GAI_GPU_ARTIFACTS/conformance (the build's GPU artifacts by default) on
// CUDA.
#include "core/Commands.h"
#include "core/Executor.h"
#include "gai/FloatConvert.h"
#include "gai/Session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <set>

using namespace gai;

namespace {

std::string gDevice = "cpu";
std::string gDir;

const char kArtifactSuffix[] = ".gai";
const char kIoSuffix[] = ".io.safetensors";

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The case names in `dir`: its NAME.gai files, sorted.
std::vector<std::string> caseNames(const std::string &dir) {
  std::vector<std::string> names;
  if (DIR *d = opendir(dir.c_str())) {
    while (dirent *e = readdir(d)) {
      std::string file = e->d_name;
      if (endsWith(file, kArtifactSuffix))
        names.push_back(file.substr(0, file.size() - (sizeof(kArtifactSuffix) - 1)));
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// `view`'s elements (f32 or i32) as `dtype` bytes; u8 ones (a quantized
/// weight's) are the input's bytes already.
std::vector<uint8_t> bytesAs(const TensorView &view, DType dtype) {
  if (view.dtype == DType::I32 || view.dtype == DType::U8 || dtype == DType::F32)
    return std::vector<uint8_t>(view.data, view.data + view.byteSize);
  std::vector<uint8_t> out(static_cast<size_t>(view.numElements()) * dtypeSize(dtype));
  EXPECT_TRUE(convertFloats(view.data, DType::F32, out.data(), dtype,
                            static_cast<size_t>(view.numElements())));
  return out;
}

/// Compares `got` (`count` elements of `dtype`) with `want`: integers
/// exactly, floats within tolerance · max(1, |want|). Reports the first few
/// mismatches and their count.
void expectClose(const std::string &what, const uint8_t *got, DType dtype, int64_t count,
                 const TensorView &want, double tolerance) {
  ASSERT_EQ(count, want.numElements()) << what << ": element count";
  int mismatches = 0;
  for (int64_t i = 0; i < count; ++i) {
    double g, w;
    if (want.dtype == DType::I32) {
      ASSERT_EQ(dtype, DType::I32) << what;
      int32_t gi, wi;
      std::memcpy(&gi, got + i * 4, 4);
      std::memcpy(&wi, want.data + i * 4, 4);
      g = gi, w = wi;
    } else {
      float gf, wf;
      convertFloats(got + i * dtypeSize(dtype), dtype, &gf, DType::F32, 1);
      std::memcpy(&wf, want.data + i * 4, 4);
      g = gf, w = wf;
    }
    double allowed = want.dtype == DType::I32 ? 0.0 : tolerance * std::max(1.0, std::abs(w));
    if (!(std::abs(g - w) <= allowed) && ++mismatches <= 5)
      ADD_FAILURE() << what << ", element " << i << ": got " << g << ", want " << w
                    << " (allowed " << allowed << ")";
  }
  EXPECT_EQ(mismatches, 0) << what << ": elements outside the tolerance";
}

/// One case: its inputs and state in, one run of @forward, its outputs and
/// state out against the expected values.
void runCase(const std::string &name) {
  if (gDevice != "cpu" && cudaDeviceCount() == 0)
    GTEST_SKIP() << "no CUDA GPU on this machine: the cuda conformance cases need one";
  auto io = SafetensorsFile::open(gDir + "/" + name + kIoSuffix);
  ASSERT_TRUE(io.isOk()) << io.status().message();
  auto tolerance = io->metadata().find("tolerance");
  ASSERT_NE(tolerance, io->metadata().end()) << name << ": no tolerance";
  double tol = std::stod(tolerance->second);

  auto artifact = LoadedArtifact::load(gDir + "/" + name + kArtifactSuffix);
  ASSERT_TRUE(artifact.isOk()) << artifact.status().message();
  SessionOptions options;
  options.device = gDevice;
  auto session = Session::create(std::move(*artifact), options);
  ASSERT_TRUE(session.isOk()) << session.status().message();
  Session &s = **session;

  std::vector<TensorRef> inputs = s.inputs("forward");
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorView *view = io->find("input." + std::to_string(i));
    ASSERT_NE(view, nullptr) << name << ": no input." << i;
    ASSERT_EQ(view->numElements(), inputs[i].numElements()) << name << ": input." << i;
    std::vector<uint8_t> bytes = bytesAs(*view, inputs[i].dtype);
    ASSERT_EQ(static_cast<int64_t>(bytes.size()), inputs[i].size) << name << ": input." << i;
    std::memcpy(inputs[i].data, bytes.data(), bytes.size());
  }
  ASSERT_EQ(io->find("input." + std::to_string(inputs.size())), nullptr)
      << name << ": more inputs than the entry takes";
  std::vector<TensorRef> state = s.stateTensors();
  for (const TensorRef &t : state)
    if (const TensorView *view = io->find("state." + t.name)) {
      std::vector<uint8_t> bytes = bytesAs(*view, t.dtype);
      ASSERT_EQ(static_cast<int64_t>(bytes.size()), t.size) << name << ": state." << t.name;
      Status w = s.writeState(t.name, bytes.data());
      ASSERT_TRUE(w.isOk()) << w.message();
    }

  Status run = s.run("forward");
  ASSERT_TRUE(run.isOk()) << name << ": " << run.message();

  std::vector<TensorRef> outputs = s.outputs("forward");
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::string key = "expected." + std::to_string(i);
    const TensorView *want = io->find(key);
    ASSERT_NE(want, nullptr) << name << ": no " << key;
    expectClose(name + " " + key, outputs[i].data, outputs[i].dtype, outputs[i].numElements(),
                *want, tol);
  }
  ASSERT_EQ(io->find("expected." + std::to_string(outputs.size())), nullptr)
      << name << ": more expected outputs than the entry has";
  int checkedState = 0;
  for (const TensorRef &t : state)
    if (const TensorView *want = io->find("expected_state." + t.name)) {
      std::vector<uint8_t> got(static_cast<size_t>(t.size));
      Status r = s.readState(t.name, got.data());
      ASSERT_TRUE(r.isOk()) << r.message();
      expectClose(name + " state " + t.name, got.data(), t.dtype, t.numElements(), *want, tol);
      ++checkedState;
    }
  int expectedState = 0;
  for (const TensorView &v : io->tensors())
    expectedState += v.name.rfind("expected_state.", 0) == 0;
  EXPECT_EQ(checkedState, expectedState) << name << ": expected state the session lacks";
}

class CaseTest : public ::testing::Test {
public:
  explicit CaseTest(std::string name) : name_(std::move(name)) {}
  void TestBody() override { runCase(name_); }

private:
  std::string name_;
};

// A command that no case reaches fails here with its name: adding a command
// means adding a case.
TEST(ConformanceList, EveryCommandHasACase) {
  std::vector<std::string> names = caseNames(gDir);
  ASSERT_FALSE(names.empty()) << "no cases in " << gDir << " (run conformance-cases)";
  std::set<std::string> found;
  for (const std::string &name : names) {
    auto artifact = LoadedArtifact::loadTables(gDir + "/" + name + kArtifactSuffix);
    ASSERT_TRUE(artifact.isOk()) << artifact.status().message();
    for (const DecodedEntry &entry : artifact->entries())
      for (const Command &command : entry.steps)
        found.insert(commandName(command));
  }
  for (const std::string &command : commandNames())
    EXPECT_TRUE(found.count(command)) << "no conformance case runs the command " << command;
  EXPECT_EQ(found.size(), commandNames().size());
}

} // namespace

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--device=", 0) == 0) {
      gDevice = arg.substr(9);
    } else if (arg.rfind("--dir=", 0) == 0) {
      gDir = arg.substr(6);
    } else {
      fprintf(stderr, "conformance-check: unknown flag %s\n"
                      "usage: conformance-check [--device=cpu|cuda] [--dir=DIR] [gtest flags]\n",
              argv[i]);
      return 2;
    }
  }
  if (gDir.empty()) {
    const char *gpuArtifacts = std::getenv("GAI_GPU_ARTIFACTS");
    gDir = gDevice == "cpu" ? std::string(GAI_CONFORMANCE_CPU_DIR)
                            : std::string(gpuArtifacts ? gpuArtifacts : GAI_GPU_ARTIFACTS_DIR) +
                                  "/conformance";
  }
  for (const std::string &name : caseNames(gDir))
    ::testing::RegisterTest("Conformance", name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                            [name]() -> CaseTest * { return new CaseTest(name); });
  return RUN_ALL_TESTS();
}
