// Incremental SHA-256 (OpenSSL EVP; uses SHA-NI where the CPU has it).
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace dsq {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const std::byte> data);
  void update(std::string_view data);
  // "sha256:<64 hex>"; the object must not be updated afterwards.
  std::string finish_digest();

 private:
  evp_md_ctx_st* ctx_;
};

std::string sha256_digest(std::span<const std::byte> data);
std::string sha256_digest(std::string_view data);
// The hex part of "sha256:<hex>", or "" when `digest` is not a well-formed SHA-256 digest.
std::string_view digest_hex(std::string_view digest);

}  // namespace dsq
