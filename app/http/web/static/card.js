// The model card page: fills the drift panel from the version's drift endpoint (JSON), asking
// again with the key when the server needs one. Everything else on the card is rendered by the server.
(function () {
  "use strict";
  const panel = document.getElementById("drift");
  if (!panel) return;
  const status = document.getElementById("drift-status");
  const table = document.getElementById("drift-table");
  const key = document.getElementById("api-key");

  // the server reads each PSI (level: stable below 0.1, moderate to 0.25, major above; null below its minimum of rows)
  const READINGS = {stable: "stable", moderate: "moderate shift", major: "major shift"};

  function reading(level) {
    return level ? ["psi-" + level, READINGS[level]] : ["", "not enough rows yet"];
  }

  // Each bin's share in training (grey) beside its share in the window (coloured), scaled to the largest.
  function histogram(bins) {
    const figure = document.createElement("span");
    figure.className = "bins";
    const largest = Math.max.apply(null, bins.map(function (b) { return Math.max(b.reference, b.current); }).concat([1e-9]));
    bins.forEach(function (b) {
      const pair = document.createElement("span");
      pair.className = "bin";
      pair.title = b.label + ": " + (b.reference * 100).toFixed(1) + "% in training, " + (b.current * 100).toFixed(1) + "% now";
      ["reference", "current"].forEach(function (which) {
        const bar = document.createElement("span");
        bar.className = which;
        bar.style.height = (100 * b[which] / largest).toFixed(1) + "%";
        pair.appendChild(bar);
      });
      figure.appendChild(pair);
    });
    return figure;
  }

  function row(name, psi, level, bins) {
    const tr = document.createElement("tr");
    tr.dataset.feature = name;
    const [kind, words] = reading(level);
    const cells = [name, psi === null || psi === undefined ? "–" : psi.toFixed(3), words];
    cells.forEach(function (text, i) {
      const td = document.createElement("td");
      td.textContent = text;
      if (i === 1) td.className = "number " + kind;
      if (i === 2) td.className = kind;
      tr.appendChild(td);
    });
    const shares = document.createElement("td");
    if (bins && bins.length) shares.appendChild(histogram(bins));
    tr.appendChild(shares);
    return tr;
  }

  // GET /models/<name>/<version>/drift (app/gateway/drift.py, app/model/drift.py)
  function show(drift) {
    const body = table.querySelector("tbody");
    body.replaceChildren();
    if (!drift.available) {
      status.textContent = drift.reason || "drift is not available";
      table.hidden = true;
      return;
    }
    body.appendChild(row("predictions", drift.predictions.psi, drift.predictions.level, drift.predictions.bins));
    drift.features.forEach(function (f) { body.appendChild(row(f.name, f.psi, f.level, f.bins)); });
    status.textContent = drift.reason || (drift.rows + " rows counted in the last " + drift.window.seconds + " s");
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
