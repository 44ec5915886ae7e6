// The `runtime` block of the isolates module: its directives compiled into RuntimeSettings.
#pragma once

#include <string>

#include "core/config/config_ast.h"
#include "core/isolates/runtime_settings.h"
#include "core/pipeline/config_model.h"

namespace subgate {

// The Deno executable when the config does not name one: $SUBGATE_DENO, then the one
// scripts/setup.sh installed next to the sources, then next to the prefix.
std::string defaultDenoPath(const std::string& prefix);

// Every directive of one `runtime NAME { ... }` block into `s`; false (with ctx's error) on a
// bad one.
bool compileRuntime(const config::Node& block, CompileContext& ctx, RuntimeSettings& s);

}  // namespace subgate
