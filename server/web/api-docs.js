// Swagger UI from the hub's own files (no CDN): the API documentation works without internet.
"use strict";
// The page's own header says what Swagger UI's info block would (its title is a second h1).
const NoInfo = () => ({ wrapComponents: { InfoContainer: () => () => null } });
window.ui = SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: false,  // true puts a link inside each operation's button: a control nested in a control
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis],
  plugins: [NoInfo],
});
// Swagger UI's request-body box has no label (WCAG 1.3.1, 4.1.2): name each one as it appears.
new MutationObserver(() => {
  for (const box of document.querySelectorAll("textarea.body-param__text:not([aria-label])")) {
    box.setAttribute("aria-label", "Request body (JSON)");
  }
}).observe(document.getElementById("swagger-ui"), { childList: true, subtree: true });
