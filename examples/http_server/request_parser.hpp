// -----------------------------------------------------------------------------
// http_server/request_parser.hpp
// -----------------------------------------------------------------------------
//
// Incremental HTTP/1.1 request parsing with Debian's http-parser (the parser
// Node.js shipped for years): bytes go in as they arrive, complete requests
// come out, and a malformed stream or an oversized header block is reported
// so the server can answer 400 or 431 and close. Bodies are parsed (so
// pipelined requests after a body are found) and dropped: no route needs one.
// Stricter than http-parser as Debian builds it: header names must be tokens
// (no whitespace before the colon), the head's size is counted in bytes as
// sent, and an Upgrade or CONNECT is refused as one request.

#ifndef LOOPSCALE_EXAMPLES_HTTP_SERVER_REQUEST_PARSER_HPP_
#define LOOPSCALE_EXAMPLES_HTTP_SERVER_REQUEST_PARSER_HPP_

#include <http_parser.h>

#include <cstddef>
#include <string>
#include <vector>

namespace loopscale::http {

// A request's head (request line and headers, as sent: with every ": " and
// CRLF) above this many bytes gets 431.
inline constexpr std::size_t kMaxHeaderBytes = 16 * 1024;

struct Request {
  std::string method;
  std::string url;
  bool keep_alive = false;
  // The value of `endpoint-load-metrics-format` (the ORCA format the client
  // asks for), if sent; at most its first 16 bytes.
  std::string load_metrics_format;
};

class RequestParser {
 public:
  enum class Status { kOk, kBad, kHeadersTooLarge };

  RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses `n` more bytes, appending every request they complete to `out`.
  // After an error the parser stays failed; the connection must close.
  Status feed(const char* data, std::size_t n, std::vector<Request>& out);

  // What was wrong, for the error response body.
  const std::string& error() const { return error_; }

  // True while a request has begun and is not complete yet.
  bool in_message() const { return in_message_; }

 private:
  static int on_message_begin(http_parser* p);
  static int on_url(http_parser* p, const char* at, std::size_t n);
  static int on_header_field(http_parser* p, const char* at, std::size_t n);
  static int on_header_value(http_parser* p, const char* at, std::size_t n);
  static int on_headers_complete(http_parser* p);
  static int on_message_complete(http_parser* p);

  http_parser parser_;
  http_parser_settings settings_;
  Request current_;
  // The header name being read, lowercased (only as much as the one name
  // this parser looks for), and whether a value has begun since.
  std::string field_;
  bool in_value_ = false;
  bool too_large_ = false;
  bool bad_field_ = false;
  bool in_message_ = false;
  Status status_ = Status::kOk;
  std::string error_;
  std::vector<Request>* out_ = nullptr;
};

}  // namespace loopscale::http

#endif  // LOOPSCALE_EXAMPLES_HTTP_SERVER_REQUEST_PARSER_HPP_
