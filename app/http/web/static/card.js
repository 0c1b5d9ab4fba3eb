// The model card page: fills the drift panel from the version's drift endpoint (JSON), asking
// again with the key when the server needs one. Everything else on the card is rendered by the server.
(function () {
  "use strict";
  const panel = document.getElementById("drift");
  if (!panel) return;
  const status = document.getElementById("drift-status");
  const table = document.getElementById("drift-table");
  const key = document.getElementById("api-key");

  function reading(psi) {
    if (psi === null || psi === undefined) return ["", "not enough rows yet"];
    if (psi < 0.1) return ["psi-stable", "stable"];
    if (psi < 0.25) return ["psi-moderate", "moderate shift"];
    return ["psi-major", "major shift"];
  }

  function row(name, psi, reason) {
    const tr = document.createElement("tr");
    tr.dataset.feature = name;
    const [kind, words] = reading(psi);
    const cells = [name, psi === null || psi === undefined ? "–" : psi.toFixed(3), reason || words];
    cells.forEach(function (text, i) {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 1) td.className = "number " + kind;
      if (i === 2) td.className = kind;
      tr.appendChild(td);
    });
    return tr;
  }

  function show(drift) {
    const body = table.querySelector("tbody");
    body.replaceChildren();
    if (drift.predictions) body.appendChild(row("predictions", drift.predictions.psi, drift.predictions.reason));
    (drift.features || []).forEach(function (f) { body.appendChild(row(f.feature, f.psi, f.reason)); });
    status.textContent = drift.summary || (drift.rows + " rows counted in the last " + drift.window_seconds + " s");
    table.hidden = false;
  }

  function load() {
    const headers = {"Accept": "application/json"};
    if (key && key.value) headers["X-API-Key"] = key.value;
    fetch(panel.dataset.url, {headers: headers}).then(function (response) {
      return response.json().then(function (body) { return [response, body]; });
    }).then(function ([response, body]) {
      if (!response.ok) {
        status.textContent = response.status === 401 ? "enter the API key to see drift" : (body.detail || "drift is not available");
        table.hidden = true;
        return;
      }
      show(body);
    }).catch(function () { status.textContent = "drift could not be loaded"; });
  }

  if (key) key.addEventListener("change", load);
  load();
}());
