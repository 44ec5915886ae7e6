// A deployment's code as an isolate loads it, from what the origin sent (issue 18, "Bundles";
// docs/origin.md): the /boot body and the layers x-deno-config names become the files to write
// into the isolate before it imports the entrypoint.
//
// - No `layers`: the body is an ESZIP when it starts with an ESZIP magic, else one JavaScript or
//   TypeScript module, the entrypoint.
// - `layers`: module graphs stacked in order, a later layer's module (or redirect) replacing an
//   earlier one of the same specifier. The inline layer's bytes are the /boot body; the others
//   come from `fetch_layer`. A kind "eszip" layer is an ESZIP; a kind "bundle" layer is one
//   module, its `specifier` (default: the entrypoint).
// - A local module (file:///path) goes to its path in the isolate's root folder
//   (module_path.h); a remote one (http:, https:) into the isolate's Deno cache
//   (core/bundle/deno_cache.h), with the Content-Type its extension implies, so that Deno loads
//   it under its own URL without the network; a remote redirect becomes a cached redirect.
//   Modules of other schemes (data:, npm:, jsr:, node:), npm packages, and local redirects are
//   refused, as are local modules of a kind that is not code or JSON or Wasm.
// - The entrypoint must be one of the modules (directly or through remote redirects).
//
// Errors: ORIGIN_INVALID_BUNDLE for what the bundle holds (the message names the layer and what
// is wrong), or what `fetch_layer` answered.
// Pure apart from `fetch_layer`; called on a boot thread.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "core/error/error_kind.h"
#include "core/isolates/deno_config.h"

namespace subgate {

struct BundleLimits {
  size_t max_bytes = 64u << 20;         // all modules' bytes, every layer together
  size_t max_modules = 10000;           // modules and redirects after stacking
  size_t max_module_bytes = 16u << 20;  // one module
};

struct CodeFailure {
  ErrorKind error = ErrorKind::kOriginInvalidBundle;
  std::string message;
};

// The bytes of layer `layer` (not the inline one), or a failure.
using LayerFetch =
    std::function<std::optional<std::string>(const CodeLayer& layer, CodeFailure& failure)>;

// Fills `code.modules` from the /boot `body` and `code`'s layers. False with `failure` set.
bool assembleCode(DeploymentCode& code, std::string body, const LayerFetch& fetch_layer,
                  const BundleLimits& limits, CodeFailure& failure);

}  // namespace subgate
