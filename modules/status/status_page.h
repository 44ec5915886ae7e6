// The HTML side of `status;`: which requests get the page, and the page with the headers it is
// served with. The page itself is status_page.html, embedded in the binary at build time.
//
// Pure or computed once; any thread.
#pragma once

#include <string>
#include <string_view>

namespace subgate {

// Whether a request with this Accept header gets the page rather than the JSON: it names
// text/html with a q above zero and above that of application/json (a tie goes to the JSON).
// Wildcards never choose the page: curl's "*/*", a missing header and anything else keep JSON.
bool prefersHtml(std::string_view accept);

// The page (status_page.html).
std::string_view statusPageHtml();

// Its Content-Security-Policy: nothing may load but the page's own inline script (allowed by its
// SHA-256, computed once from the embedded page) and inline styles; its fetch() may reach only
// its own origin.
const std::string& statusPagePolicy();

}  // namespace subgate
