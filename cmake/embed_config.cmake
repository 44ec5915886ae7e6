# Writes the text of IN as a C++ raw string into OUT, as `const std::string_view subgate::VAR`.
# Used for the embedded default config and the isolate harness.
file(READ ${IN} CONTENT)
file(WRITE ${OUT} "// Generated from ${IN}; do not edit.\n#include <string_view>\nnamespace subgate {\nextern const std::string_view ${VAR};\nconst std::string_view ${VAR} = R\"subgate_embed(${CONTENT})subgate_embed\";\n}  // namespace subgate\n")
