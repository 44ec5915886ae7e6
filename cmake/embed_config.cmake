# Writes the text of IN as a C++ raw string into OUT (subgate::kEmbeddedConfig).
file(READ ${IN} CONTENT)
file(WRITE ${OUT} "// Generated from conf/subgate.conf; do not edit.\n#include <string_view>\nnamespace subgate {\nextern const std::string_view kEmbeddedConfig;\nconst std::string_view kEmbeddedConfig = R\"subgate_conf(${CONTENT})subgate_conf\";\n}  // namespace subgate\n")
