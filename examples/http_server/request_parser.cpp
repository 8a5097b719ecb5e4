#include "request_parser.hpp"

namespace loopscale::http {
namespace {

RequestParser& self(http_parser* p) { return *static_cast<RequestParser*>(p->data); }

}  // namespace

RequestParser::RequestParser() {
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
  http_parser_settings_init(&settings_);
  settings_.on_message_begin = &RequestParser::on_message_begin;
  settings_.on_url = &RequestParser::on_url;
  settings_.on_header_field = &RequestParser::on_header_bytes;
  settings_.on_header_value = &RequestParser::on_header_bytes;
  settings_.on_headers_complete = &RequestParser::on_headers_complete;
  settings_.on_message_complete = &RequestParser::on_message_complete;
}

int RequestParser::on_message_begin(http_parser* p) {
  RequestParser& r = self(p);
  r.current_ = Request{};
  r.header_bytes_ = 0;
  return 0;
}

int RequestParser::on_url(http_parser* p, const char* at, std::size_t n) {
  RequestParser& r = self(p);
  r.current_.url.append(at, n);
  return on_header_bytes(p, at, n);
}

int RequestParser::on_header_bytes(http_parser* p, const char*, std::size_t n) {
  RequestParser& r = self(p);
  r.header_bytes_ += n;
  if (r.header_bytes_ > kMaxHeaderBytes) {
    r.too_large_ = true;
    return 1;  // stops the parser
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
  if (too_large_) {
    status_ = Status::kHeadersTooLarge;
    error_ = "request headers exceed 16 KiB";
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
