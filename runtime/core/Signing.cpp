// Ed25519 through libsodium, opened at run time (as the CUDA driver is), so
// that the runtime needs it only where signatures are used.
#include "gai/Signing.h"

#include "gai/SafeFile.h"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace gai {
namespace {

// Ed25519's sizes (libsodium's crypto_sign_*BYTES).
constexpr size_t kPublicKeyBytes = 32, kSecretKeyBytes = 64, kSignatureBytes = 64;
constexpr const char *kSecretTag = "gai-ed25519-secret-key";
constexpr const char *kPublicTag = "gai-ed25519-public-key";
constexpr const char *kSignatureTag = "gai-ed25519-signature";

/// The libsodium functions signing needs.
struct Sodium {
  int (*init)();
  int (*keypair)(unsigned char *pk, unsigned char *sk);
  int (*sign)(unsigned char *sig, unsigned long long *siglen, const unsigned char *m,
              unsigned long long mlen, const unsigned char *sk);
  int (*verify)(const unsigned char *sig, const unsigned char *m, unsigned long long mlen,
                const unsigned char *pk);
};

StatusOr<const Sodium *> sodium() {
  static const Sodium *loaded = [] () -> const Sodium * {
    void *lib = nullptr;
    for (const char *name : {"libsodium.so.23", "libsodium.so.26", "libsodium.so"})
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)))
        break;
    if (!lib)
      return nullptr;
    static Sodium s;
    s.init = reinterpret_cast<int (*)()>(dlsym(lib, "sodium_init"));
    s.keypair = reinterpret_cast<decltype(s.keypair)>(dlsym(lib, "crypto_sign_keypair"));
    s.sign = reinterpret_cast<decltype(s.sign)>(dlsym(lib, "crypto_sign_detached"));
    s.verify =
        reinterpret_cast<decltype(s.verify)>(dlsym(lib, "crypto_sign_verify_detached"));
    if (!s.init || !s.keypair || !s.sign || !s.verify || s.init() < 0)
      return nullptr;
    return &s;
  }();
  if (!loaded)
    return Status::error("signatures need libsodium (libsodium23), which could not be loaded");
  return loaded;
}

std::string hex(const unsigned char *data, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

bool unhex(const std::string &text, std::vector<unsigned char> &out, size_t size) {
  if (text.size() != 2 * size)
    return false;
  out.assign(size, 0);
  for (size_t i = 0; i < 2 * size; ++i) {
    char c = text[i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0)
      return false;
    out[i / 2] = static_cast<unsigned char>(out[i / 2] << 4 | v);
  }
  return true;
}

/// The words of a small key or signature file.
StatusOr<std::vector<std::string>> words(const std::string &path) {
  StatusOr<std::vector<uint8_t>> bytes = readRegularFile(path);
  if (!bytes)
    return bytes.status();
  std::istringstream in(std::string(bytes->begin(), bytes->end()));
  std::vector<std::string> out;
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

/// The key of `tag` in `path` (`tag` then hex), `size` bytes.
StatusOr<std::vector<unsigned char>> readKey(const std::string &path, const char *tag,
                                             size_t size) {
  StatusOr<std::vector<std::string>> w = words(path);
  if (!w)
    return w.status();
  std::vector<unsigned char> key;
  if (w->size() != 2 || (*w)[0] != tag || !unhex((*w)[1], key, size))
    return Status::error(path + ": not a " + tag + " file");
  return key;
}

} // namespace

Status generateSigningKey(const std::string &prefix) {
  StatusOr<const Sodium *> s = sodium();
  if (!s)
    return s.status();
  unsigned char pk[kPublicKeyBytes], sk[kSecretKeyBytes];
  if ((*s)->keypair(pk, sk) != 0)
    return Status::error("making a key pair failed");
  std::string secret = std::string(kSecretTag) + " " + hex(sk, sizeof sk) + "\n";
  std::string pub = std::string(kPublicTag) + " " + hex(pk, sizeof pk) + "\n";
  std::memset(sk, 0, sizeof sk);
  // The secret key is written readable by its owner only.
  mode_t old = umask(077);
  Status written = writeFileAtomically(prefix + ".key", secret);
  umask(old);
  if (!written)
    return written;
  return writeFileAtomically(prefix + ".pub", pub);
}

Status signFile(const std::string &path, const std::string &keyPath) {
  StatusOr<const Sodium *> s = sodium();
  if (!s)
    return s.status();
  StatusOr<std::vector<unsigned char>> sk = readKey(keyPath, kSecretTag, kSecretKeyBytes);
  if (!sk)
    return sk.status();
  StatusOr<std::vector<uint8_t>> bytes = readRegularFile(path);
  if (!bytes)
    return bytes.status();
  unsigned char sig[kSignatureBytes];
  unsigned long long length = 0;
  if ((*s)->sign(sig, &length, bytes->data(), bytes->size(), sk->data()) != 0)
    return Status::error(path + ": signing failed");
  // An Ed25519 secret key ends with its public key.
  std::string out = std::string(kSignatureTag) + " " +
                    hex(sk->data() + kSecretKeyBytes - kPublicKeyBytes, kPublicKeyBytes) +
                    " " + hex(sig, sizeof sig) + "\n";
  return writeFileAtomically(path + ".sig", out);
}

Status verifyFile(const std::string &path, const std::string &trustedKeysDir) {
  StatusOr<const Sodium *> s = sodium();
  if (!s)
    return s.status();
  const std::string sigPath = path + ".sig";
  struct stat st {};
  if (stat(sigPath.c_str(), &st) != 0)
    return Status::error(path + ": unsigned (no " + sigPath + "), and --trusted-keys " +
                         trustedKeysDir + " asks for a signature");
  StatusOr<std::vector<std::string>> w = words(sigPath);
  if (!w)
    return w.status();
  std::vector<unsigned char> signer, sig;
  if (w->size() != 3 || (*w)[0] != kSignatureTag ||
      !unhex((*w)[1], signer, kPublicKeyBytes) || !unhex((*w)[2], sig, kSignatureBytes))
    return Status::error(sigPath + ": not a " + kSignatureTag + " file");

  DIR *dir = opendir(trustedKeysDir.c_str());
  if (!dir)
    return Status::error(trustedKeysDir + ": cannot read the trusted keys: " +
                         std::strerror(errno));
  bool trusted = false;
  Status bad = Status::ok();
  while (dirent *entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".pub") != 0)
      continue;
    StatusOr<std::vector<unsigned char>> pk =
        readKey(trustedKeysDir + "/" + name, kPublicTag, kPublicKeyBytes);
    if (!pk) {
      bad = pk.status();
      continue;
    }
    trusted |= *pk == signer;
  }
  closedir(dir);
  if (!trusted)
    return Status::error(path + ": signed by key " + (*w)[1].substr(0, 16) +
                         "..., which is not among the trusted keys in " + trustedKeysDir +
                         (bad ? "" : " (" + bad.message() + ")"));
  StatusOr<std::vector<uint8_t>> bytes = readRegularFile(path);
  if (!bytes)
    return bytes.status();
  if ((*s)->verify(sig.data(), bytes->data(), bytes->size(), signer.data()) != 0)
    return Status::error(path + ": the signature does not match the file: it was changed "
                                "after it was signed");
  return Status::ok();
}

} // namespace gai
