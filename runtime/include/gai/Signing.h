// Ed25519 signatures of artifacts and weights, so that a deployment can
// refuse files nobody it trusts has signed. Loading an artifact runs its
// native code: the checksum in its footer catches accidents, a signature
// catches tampering (docs/artifact.md, "Trust").
#ifndef GAI_SIGNING_H
#define GAI_SIGNING_H

#include "gai/Status.h"

#include <string>

namespace gai {

/// Writes a new key pair: `prefix`.key (the secret key, readable by its
/// owner only) and `prefix`.pub (the public key, for trusted-key folders).
Status generateSigningKey(const std::string &prefix);

/// Signs the bytes of `path` with the secret key in `keyPath`: writes
/// `path`.sig (the signer's public key and the signature).
Status signFile(const std::string &path, const std::string &keyPath);

/// Checks that `path`.sig is a signature of `path`'s bytes by one of the
/// public keys (*.pub) in `trustedKeysDir`; an error names what is missing
/// or wrong.
Status verifyFile(const std::string &path, const std::string &trustedKeysDir);

} // namespace gai

#endif // GAI_SIGNING_H
