// core/isolates/client_message.h: what a client may read of an isolate's failure.
#include "core/isolates/client_message.h"

#include <gtest/gtest.h>

#include <string>

namespace subgate {
namespace {

constexpr std::string_view kDir = "/tmp/subgate-Ab12Cd";

TEST(ClientMessage, TheIsolateRootFolderGivesWayToTheModulesOwnPath) {
  EXPECT_EQ(clientMessage("The module's source code could not be parsed: Expected ';' at "
                          "file:///tmp/subgate-Ab12Cd/iso-17/root/src/main.ts:3:7",
                          kDir),
            "The module's source code could not be parsed: Expected ';' at "
            "file:///src/main.ts:3:7");
  EXPECT_EQ(clientMessage("cannot write /tmp/subgate-Ab12Cd/iso-3/root/app/main.js", kDir),
            "cannot write /app/main.js");
}

TEST(ClientMessage, OtherMentionsOfTheRuntimeFolderAreNeutral) {
  EXPECT_EQ(clientMessage("at file:///tmp/subgate-Ab12Cd/harness.js:300:5 and "
                          "/tmp/subgate-Ab12Cd/iso-x/root/a /tmp/subgate-Ab12Cd/iso-3/rootx "
                          "/tmp/subgate-Ab12Cd",
                          kDir),
            "at <runtime>/harness.js:300:5 and <runtime>/iso-x/root/a <runtime>/iso-3/rootx "
            "<runtime>");
  EXPECT_EQ(clientMessage("no folder named", kDir), "no folder named");
  EXPECT_EQ(clientMessage("kept as is: /tmp/x", ""), "kept as is: /tmp/x");
}

TEST(ClientMessage, OnlyPrintableAsciiReachesTheClient) {
  EXPECT_EQ(clientMessage(std::string("a\x01\x7f\xff\xc3\xa9 b\tc\r\nd", 13), kDir),
            "a????? b c  d");
}

TEST(ClientMessage, LongMessagesAreCutWithAnEllipsis) {
  const std::string exact(kMaxClientMessage, 'x');
  EXPECT_EQ(clientMessage(exact, kDir), exact);
  const std::string cut = clientMessage(exact + "y", kDir);
  EXPECT_EQ(cut.size(), kMaxClientMessage);
  EXPECT_EQ(cut, std::string(kMaxClientMessage - 3, 'x') + "...");
}

}  // namespace
}  // namespace subgate
