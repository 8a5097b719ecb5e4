#include "request_parser.hpp"

#include <algorithm>
#include <string_view>

namespace loopscale::http {
namespace {

RequestParser& self(http_parser* p) { return *static_cast<RequestParser*>(p->data); }

}  // namespace

RequestParser::RequestParser() {
  // http-parser counts a message's head in bytes as sent (request line,
  // names, values and every ": " and CRLF) and stops at this many with
  // HPE_HEADER_OVERFLOW. The setting is the library's, process-wide: every
  // parser of this server has the same limit.
  static const bool limited = [] {
    http_parser_set_max_header_size(kMaxHeaderBytes);
    return true;
  }();
  (void)limited;
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_message_begin = &RequestParser::on_message_begin;
  settings_.on_url = &RequestParser::on_url;
  settings_.on_header_field = &RequestParser::on_header_field;
  settings_.on_header_value = &RequestParser::on_header_value;
  settings_.on_headers_complete = &RequestParser::on_headers_complete;
  settings_.on_message_complete = &RequestParser::on_message_complete;
}

int RequestParser::on_message_begin(http_parser* p) {
  RequestParser& r = self(p);
  r.in_message_ = true;
  r.current_ = Request{};
  r.field_.clear();
  r.in_value_ = false;
  return 0;
}

int RequestParser::on_url(http_parser* p, const char* at, std::size_t n) {
  RequestParser& r = self(p);
  r.current_.url.append(at, n);
  return 0;
}

// RFC 9110 5.6.2: a field name is a token. http-parser, built lenient as
// Debian ships it, lets "Content-Length : 5" through as Content-Length,
// which a strict proxy in front reads as another header: the request body
// two hops disagree on is how requests are smuggled.
bool is_token_char(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*':
    case '+': case '-': case '.': case '^': case '_': case '`': case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

constexpr std::string_view kFormatHeader = "endpoint-load-metrics-format";
constexpr std::size_t kMaxFormatBytes = 16;

int RequestParser::on_header_field(http_parser* p, const char* at, std::size_t n) {
  RequestParser& r = self(p);
  if (r.in_value_) {  // a new header begins
    r.field_.clear();
    r.in_value_ = false;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(at[i]);
    if (!is_token_char(c)) {
      r.bad_field_ = true;
      return 1;  // stops the parser
    }
    if (r.field_.size() <= kFormatHeader.size()) {
      r.field_ += static_cast<char>(c >= 'A' && c <= 'Z' ? c | 0x20 : c);
    }
  }
  return 0;
}

// A name may arrive in pieces, and so may a value.
int RequestParser::on_header_value(http_parser* p, const char* at, std::size_t n) {
  RequestParser& r = self(p);
  r.in_value_ = true;
  if (r.field_ == kFormatHeader) {
    std::string& v = r.current_.load_metrics_format;
    v.append(at, std::min(n, kMaxFormatBytes - std::min(v.size(), kMaxFormatBytes)));
  }
  return 0;
}


int RequestParser::on_headers_complete(http_parser* p) {
  RequestParser& r = self(p);
  r.current_.method = http_method_str(static_cast<http_method>(p->method));
  return 0;
}

int RequestParser::on_message_complete(http_parser* p) {
  RequestParser& r = self(p);
  r.in_message_ = false;
  // An Upgrade or CONNECT ends HTTP on this connection: it is refused with
  // one response (the error), not answered as a request and then refused.
  if (p->upgrade != 0) return 0;
  r.current_.keep_alive = http_should_keep_alive(p) != 0;
  r.out_->push_back(std::move(r.current_));
  r.current_ = Request{};
  return 0;
}

RequestParser::Status RequestParser::feed(const char* data, std::size_t n,
                                          std::vector<Request>& out) {
  if (status_ != Status::kOk) return status_;
  out_ = &out;
  const std::size_t used = http_parser_execute(&parser_, &settings_, data, n);
  out_ = nullptr;
  if (too_large_ || HTTP_PARSER_ERRNO(&parser_) == HPE_HEADER_OVERFLOW) {
    status_ = Status::kHeadersTooLarge;
    error_ = "request headers exceed 16 KiB";
  } else if (bad_field_) {
    status_ = Status::kBad;
    error_ = "malformed request: a header name holds a character that is not "
             "allowed there (whitespace before the colon?)";
  } else if (HTTP_PARSER_ERRNO(&parser_) != HPE_OK) {
    status_ = Status::kBad;
    error_ = std::string("malformed request: ") +
             http_errno_description(HTTP_PARSER_ERRNO(&parser_));
  } else if (parser_.upgrade != 0) {
    status_ = Status::kBad;
    error_ = "protocol upgrades are not supported";
  } else if (used != n) {
    status_ = Status::kBad;
    error_ = "malformed request";
  }
  return status_;
}

}  // namespace loopscale::http
