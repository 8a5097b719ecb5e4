// libFuzzer target: the TOML config loader on arbitrary text. A config file
// is user input: no text may crash, hang or exhaust memory, and whatever the
// loader accepts must be valid options (the loader never returns a config
// that `LoopPool::create` would refuse). Seeds: tests/fuzz/corpus_config.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "loopscale/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto options = loopscale::parse_pool_options(text);
  if (options.ok()) {
    if (!loopscale::validate(*options).ok()) std::abort();
  } else if (options.status().message().empty()) {
    std::abort();  // every error says what is wrong
  }
  return 0;
}
