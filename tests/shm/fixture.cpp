// Publishes fixed pools into a metrics file and holds them until stdin
// closes, for the end-to-end checks of loopscale-top and the Python reader:
//
//   shm_fixture PATH SERVICE:POOL:LOOPS:STEP [...]
//
// Each pool's loops carry the figures of testing::stats_at(). Prints "ready"
// once everything is published. A pool spec that does not parse is an error
// naming it (exit 2); a file that cannot be used exits 1.

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "loopscale/shm/publisher.hpp"
#include "support/shm_file.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: shm_fixture PATH SERVICE:POOL:LOOPS:STEP...\n");
    return 2;
  }
  std::vector<std::unique_ptr<loopscale::shm::Publisher>> pubs;
  for (int i = 2; i < argc; ++i) {
    std::vector<std::string> parts = absl::StrSplit(argv[i], ':');
    std::size_t loops = 0;
    std::uint64_t step = 0;
    if (parts.size() != 4 || !absl::SimpleAtoi(parts[2], &loops) ||
        !absl::SimpleAtoi(parts[3], &step)) {
      std::fprintf(stderr, "shm_fixture: bad pool spec \"%s\"\n", argv[i]);
      return 2;
    }
    loopscale::MetricsConfig config;
    config.shm_path = argv[1];
    config.service = parts[0];
    auto pub = loopscale::shm::Publisher::attach(config, parts[1], loops);
    if (!pub.ok()) {
      std::fprintf(stderr, "shm_fixture: %s\n",
                   std::string(pub.status().message()).c_str());
      return 1;
    }
    (*pub)->publish(loopscale::testing::stats_at(parts[1], loops, step));
    pubs.push_back(*std::move(pub));
  }
  std::printf("ready\n");
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
  }
  return 0;
}
