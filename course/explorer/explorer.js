// Connects the page to the Vega view: binds the two sliders to their signals, and writes the
// β label, the slider's aria-valuetext and the loss readout whenever Vega recomputes. Its words
// come from the spec's signal `text` (course/explorer/strings.py).
(function () {
var root = document.currentScript.closest(".klloss-explorer");
var vega = window.kllossVega;
var spec = JSON.parse(root.querySelector(".klloss-explorer-spec").textContent);
var betaInput = root.querySelector("#explorer-beta"), offsetInput = root.querySelector("#explorer-offset");
var readout = root.querySelector("#explorer-loss");
spec.signals.forEach(function (s) {
  if (s.name === "beta_position") s.bind = {element: betaInput};
  if (s.name === "offset_position") s.bind = {element: offsetInput};
});
var view = new vega.View(vega.parse(spec), {renderer: "svg", container: root.querySelector(".klloss-explorer-view"), hover: false});
var text = view.signal("text");
root.kllossView = view;  // for the curious, and for tests/test_explorer.py: view.data("cells")
function show() {
  var beta = view.signal("beta"), offset = view.signal("offset"), loss = view.data("loss")[0];
  var betaText = text.beta_value + beta, offsetText = text.offset_value + offset;
  betaInput.setAttribute("aria-valuetext", betaText);
  root.querySelector(".klloss-explorer-beta-value").textContent = betaText;
  offsetInput.setAttribute("aria-valuetext", offsetText);
  root.querySelector(".klloss-explorer-offset-value").textContent = offsetText;
  readout.textContent = text.loss_value + loss.text + (loss.loss < 0 ? text.negative : "");
  readout.classList.toggle("negative", loss.loss < 0);
  readout.setAttribute("data-beta", String(beta));
  readout.setAttribute("data-offset", String(offset));
  nowrapFormulas(root.querySelector(".klloss-explorer-why"), loss.why);
}
// a formula (β < 0.775, KL = 0.0855, L = k·KL + M/β) never breaks across lines: each sits in a
// span that does not wrap; the words around it wrap as they must
var FORMULA = /[^\s，：；（）,:;()]+(?: [=<>+\u2212] [^\s，：；（）,:;()]+)+/g;
function nowrapFormulas(element, text) {
  element.textContent = "";
  var at = 0, match;
  FORMULA.lastIndex = 0;
  while ((match = FORMULA.exec(text))) {
    element.append(text.slice(at, match.index));
    var span = document.createElement("span");
    span.className = "klloss-nowrap";
    span.textContent = match[0];
    element.append(span);
    at = match.index + match[0].length;
  }
  element.append(text.slice(at));
}
view.addDataListener("loss", show);
view.runAsync().then(function () {
  show();
  root.querySelector(".klloss-explorer-fallback").hidden = true;
  root.setAttribute("data-ready", "true");
});
})();
