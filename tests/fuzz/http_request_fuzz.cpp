// libFuzzer target: the example HTTP server's request parser on arbitrary
// bytes, fed in arbitrary pieces as a socket would deliver them. A request is
// untrusted input: nothing may crash or read out of bounds, a failed parser
// stays failed, and what it returns is bounded by what it was given.
// Seeds: tests/fuzz/corpus_http.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "request_parser.hpp"

using loopscale::http::Request;
using loopscale::http::RequestParser;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte chooses the size of the pieces (1..256 bytes).
  const std::size_t piece = static_cast<std::size_t>(data[0]) + 1;
  const char* bytes = reinterpret_cast<const char*>(data + 1);
  const std::size_t n = size - 1;
  RequestParser parser;
  std::vector<Request> requests;
  RequestParser::Status last = RequestParser::Status::kOk;
  for (std::size_t at = 0; at < n; at += piece) {
    const std::size_t len = n - at < piece ? n - at : piece;
    const RequestParser::Status status = parser.feed(bytes + at, len, requests);
    if (last != RequestParser::Status::kOk && status != last) std::abort();
    last = status;
    if (status != RequestParser::Status::kOk && parser.error().empty()) std::abort();
  }
  for (const Request& r : requests) {
    if (r.method.empty() || r.method.size() + r.url.size() > n) std::abort();
  }
  return 0;
}
