/* Trellis: start ReDoc (redoc/redoc.standalone.js) for the page's API.
 *
 * The settings come from data attributes written by trellis.openapi.docs.redoc_html, so the
 * page needs no inline script and its Content-Security-Policy can allow 'self' scripts only.
 *   data-spec-url: the URL of the OpenAPI document
 *   data-options:  the ReDoc options as JSON
 */
(function () {
  "use strict";
  var node = document.getElementById("redoc");
  var options = JSON.parse(node.getAttribute("data-options") || "{}");
  window.Redoc.init(node.getAttribute("data-spec-url"), options, node);
})();
