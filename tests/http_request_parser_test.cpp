// The example HTTP server's request parser against hostile input: strict
// header syntax (no request smuggling behind a proxy), one response per
// request (upgrades refused as one), and header limits in bytes on the wire.

#include "request_parser.hpp"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace loopscale::http {
namespace {

struct Parsed {
  RequestParser::Status status;
  std::vector<Request> requests;
  std::string error;
};

// Feeds `text` in pieces of `piece` bytes, as reads might deliver it.
Parsed parse(const std::string& text, std::size_t piece = 1 << 20) {
  RequestParser parser;
  Parsed out{RequestParser::Status::kOk, {}, {}};
  for (std::size_t at = 0; at < text.size(); at += piece) {
    out.status = parser.feed(text.data() + at, std::min(piece, text.size() - at),
                             out.requests);
  }
  out.error = parser.error();
  return out;
}

TEST(RequestParserTest, ParsesPipelinedRequestsInAnyPieces) {
  const std::string two =
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n"
      "Connection: close\r\n\r\n";
  for (std::size_t piece : {1u, 3u, 1000u}) {
    const Parsed p = parse(two, piece);
    ASSERT_EQ(p.status, RequestParser::Status::kOk) << piece;
    ASSERT_EQ(p.requests.size(), 2u) << piece;
    EXPECT_EQ(p.requests[0].url, "/a");
    EXPECT_TRUE(p.requests[0].keep_alive);
    EXPECT_EQ(p.requests[1].url, "/b");
    EXPECT_FALSE(p.requests[1].keep_alive);
  }
}

TEST(RequestParserTest, WhitespaceBeforeAHeaderColonIsRefused) {
  // "Content-Length : 5" is a different header to a strict proxy and the
  // body length to a lax server: a request smuggled past the proxy.
  for (const char* field : {"Content-Length : 5", "Content-Length\t: 5", "Host : x"}) {
    const Parsed p = parse(std::string("POST / HTTP/1.1\r\n") + field +
                           "\r\n\r\nhelloGET /smuggled HTTP/1.1\r\n\r\n");
    EXPECT_EQ(p.status, RequestParser::Status::kBad) << field;
    EXPECT_TRUE(p.requests.empty()) << field;
    EXPECT_NE(p.error.find("header"), std::string::npos) << p.error;
  }
}

TEST(RequestParserTest, AnUpgradeOrConnectIsRefusedAsOneRequest) {
  for (const char* request :
       {"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"}) {
    const Parsed p = parse(request);
    EXPECT_EQ(p.status, RequestParser::Status::kBad) << request;
    // Not answered as a request too: the error is the one response.
    EXPECT_TRUE(p.requests.empty()) << request;
    EXPECT_NE(p.error.find("not supported"), std::string::npos) << p.error;
  }
}

TEST(RequestParserTest, TheHeaderLimitCountsBytesOnTheWire) {
  // 3000 headers of 2 bytes each: 6 KB of names and values, 18 KB sent.
  std::string request = "GET / HTTP/1.1\r\n";
  while (request.size() < kMaxHeaderBytes + 2000) request += "a:b\r\n";
  request += "\r\n";
  const Parsed p = parse(request, 4096);
  EXPECT_EQ(p.status, RequestParser::Status::kHeadersTooLarge);
  EXPECT_TRUE(p.requests.empty());
  // Just under the limit is fine.
  std::string fits = "GET / HTTP/1.1\r\n";
  while (fits.size() < kMaxHeaderBytes - 100) fits += "a:b\r\n";
  fits += "\r\n";
  EXPECT_EQ(parse(fits, 4096).status, RequestParser::Status::kOk);
}

TEST(RequestParserTest, AFailedParserStaysFailed) {
  RequestParser parser;
  std::vector<Request> out;
  const std::string garbage = "GARBAGE \x01 NOT HTTP\r\n\r\n";
  EXPECT_EQ(parser.feed(garbage.data(), garbage.size(), out), RequestParser::Status::kBad);
  const std::string good = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_EQ(parser.feed(good.data(), good.size(), out), RequestParser::Status::kBad);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace loopscale::http
