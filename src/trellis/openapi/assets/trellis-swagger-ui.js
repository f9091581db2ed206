/* Trellis: start Swagger UI (swagger-ui/swagger-ui-bundle.js) for the page's API.
 *
 * The settings come from data attributes written by trellis.openapi.docs.swagger_ui_html, so
 * the page needs no inline script and its Content-Security-Policy can allow 'self' scripts only.
 *   data-config: the SwaggerUIBundle options as JSON (url, dom_id, layout ...)
 *   data-oauth:  the options of ui.initOAuth(), as JSON, when given
 */
(function () {
  "use strict";
  var node = document.getElementById("swagger-ui");
  var config = JSON.parse(node.getAttribute("data-config") || "{}");
  // Identity providers want an absolute redirect URL; the page gives a path.
  if (typeof config.oauth2RedirectUrl === "string") {
    config.oauth2RedirectUrl = new URL(config.oauth2RedirectUrl, window.location.href).href;
  }
  var ui = window.SwaggerUIBundle(config);
  var oauth = node.getAttribute("data-oauth");
  if (oauth) {
    ui.initOAuth(JSON.parse(oauth));
  }
  window.ui = ui;
})();
