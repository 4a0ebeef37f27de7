// Loads Vega once per page, privately: the UMD build is given its own `module`/`exports`, so it
// neither needs nor touches a global `define` (require.js) or another copy of Vega on the page.
(function () {
if (window.kllossVega && window.kllossVega.version === "$version") return;
var module = {exports: {}}, exports = module.exports, define;
$vega
window.kllossVega = module.exports;
}).call(window);
