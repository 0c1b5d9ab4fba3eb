// The form posts one JSON record to /predict and shows a classifier's label with a bar per
// class probability, or a regressor's value against the range seen in training; then why (each
// feature's contribution as a bar, when the model explains its predictions), the warnings, and
// per-field errors from the problem+json response.
(function () {
  "use strict";
  const form = document.getElementById("predict-form");
  const button = document.getElementById("predict-button");
  const formError = document.getElementById("form-error");
  // Display names of the classes ("1" -> "diabetes"), where the version has them; the API answers labels.
  const classNames = JSON.parse(form.dataset.classNames || "{}");
  const shown = (label) => (Object.prototype.hasOwnProperty.call(classNames, label) ? classNames[label] : label);
  // Explanations are asked for where the model gives them; features are shown by their labels.
  const explained = form.dataset.explain === "true";
  const featureLabels = JSON.parse(form.dataset.labels || "{}");
  const labelOf = (name) => (Object.prototype.hasOwnProperty.call(featureLabels, name) ? featureLabels[name] : name);

  // The model picker: another model or version is another page.
  const picker = document.getElementById("model-choice");
  if (picker) picker.addEventListener("change", () => window.location.assign(picker.value));

  function record() {
    const values = {};
    for (const input of form.querySelectorAll("[data-kind]")) {
      const text = input.value.trim();
      if (text === "") values[input.name] = null;
      else values[input.name] = input.dataset.kind === "number" ? Number(text) : text;
    }
    return values;
  }

  function clearErrors() {
    formError.textContent = "";
    for (const field of form.querySelectorAll(".field")) {
      field.classList.remove("invalid");
      field.querySelector(".error").textContent = "";
    }
  }

  function showProblem(problem) {
    let placed = false;
    for (const item of problem.errors || []) {
      const field = item.field && form.querySelector(`.field[data-field="${CSS.escape(item.field)}"]`);
      if (field) {
        field.classList.add("invalid");
        field.querySelector(".error").textContent = item.problem;
        placed = true;
      }
    }
    if (!placed) formError.textContent = `${problem.title || "Error"}: ${problem.detail || ""}`;
  }

  function formatNumber(value) {
    return Math.abs(value) >= 1e5 || (value !== 0 && Math.abs(value) < 1e-3)
      ? value.toExponential(4) : String(Number(value.toPrecision(6)));
  }

  // A regressor's value on the training targets' range: the band holds 90% of them.
  function showValue(value) {
    const range = document.getElementById("result-range");
    const { min, max, q05, q95, target } = form.dataset;
    if (min === undefined) { range.hidden = true; return; }
    const low = Number(min), high = Number(max);
    const span = high - low || 1;
    const place = (x) => `${Math.min(100, Math.max(0, ((x - low) / span) * 100)).toFixed(1)}%`;
    const band = range.querySelector(".range-band");
    band.style.left = place(Number(q05));
    band.style.width = `calc(${place(Number(q95))} - ${place(Number(q05))})`;
    range.querySelector(".range-marker").style.left = place(value);
    const where = value < low ? "below every" : value > high ? "above every" : "within the range of the";
    document.getElementById("result-range-text").textContent =
      `${where} ${target} seen in training: ${formatNumber(low)} to ${formatNumber(high)} ` +
      `(90% between ${formatNumber(Number(q05))} and ${formatNumber(Number(q95))})`;
    range.hidden = false;
  }

  // What the explained number is, in words: "log-odds of diabetes", "probability of 1", "progression".
  function outputName(explanation) {
    const of = explanation.class === null ? "" : ` of ${shown(String(explanation.class))}`;
    switch (explanation.output) {
      case "value": return form.dataset.target;
      case "log-value": return `log of ${form.dataset.target}`;
      case "softmax-score": return `score${of} (before the softmax)`;
      case "decision": return `decision function${of}`;
      default: return `${explanation.output}${of}`;
    }
  }

  // Three significant digits: enough to compare contributions, short enough to read.
  const brief = (value) => String(Number(value.toPrecision(3)));
  const signed = (value) => `${value < 0 ? "\u2212" : "+"}${brief(Math.abs(value))}`;

  // Each feature's contribution as a bar from the middle: right (up) raises the output, left
  // (down) lowers it; the largest first. Baseline + contributions = this row's value.
  function showExplanation(explanation) {
    const why = document.getElementById("why");
    if (!explanation) { why.hidden = true; return; }
    document.getElementById("why-title").textContent = `Why: what each feature adds to the ${outputName(explanation)}`;
    document.getElementById("why-baseline").textContent =
      `baseline (the average over the training data) ${brief(explanation.baseline)}` +
      ` + contributions = ${brief(explanation.value)} for this input`;
    const entries = Object.entries(explanation.contributions).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
    const largest = Math.max(...entries.map(([, value]) => Math.abs(value))) || 1;
    const bars = document.getElementById("why-bars");
    bars.replaceChildren(...entries.map(([name, value]) => {
      const row = document.createElement("div");
      row.className = `contribution ${value > 0 ? "up" : value < 0 ? "down" : "none"}`;
      row.dataset.feature = name;
      const label = document.createElement("span");
      label.className = "feature";
      label.textContent = labelOf(name);
      const track = document.createElement("div");
      track.className = "track";
      const fill = document.createElement("div");
      fill.className = "fill";
      const width = (Math.abs(value) / largest) * 50;
      fill.style.width = `${width.toFixed(2)}%`;
      fill.style.left = value < 0 ? `${(50 - width).toFixed(2)}%` : "50%";
      track.append(fill);
      const amount = document.createElement("span");
      amount.className = "amount";
      amount.textContent = signed(value);
      row.append(label, track, amount);
      return row;
    }));
    document.getElementById("why-method").textContent = explanation.exact
      ? `exact (${explanation.method})`
      : `approximate (${explanation.method}: Shapley values against a sample of the training rows)`;
    why.hidden = false;
  }

  function showPrediction(body) {
    const prediction = body.predictions[0];
    const bars = document.getElementById("result-bars");
    bars.replaceChildren();
    if ("value" in prediction) {
      document.getElementById("result-label").textContent = formatNumber(prediction.value);
      showValue(prediction.value);
    } else {
      document.getElementById("result-label").textContent = shown(String(prediction.label));
      document.getElementById("result-range").hidden = true;
    }
    for (const [label, probability] of Object.entries(prediction.probabilities || {})) {
      const row = document.createElement("div");
      row.className = "bar" + (label === String(prediction.label) ? " best" : "");
      row.dataset.label = label;
      const name = document.createElement("span");
      name.textContent = shown(label);
      const track = document.createElement("div");
      track.className = "track";
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = `${(probability * 100).toFixed(1)}%`;
      track.append(fill);
      const value = document.createElement("span");
      value.className = "probability";
      value.textContent = `${(probability * 100).toFixed(1)}%`;
      row.append(name, track, value);
      bars.append(row);
    }
    showExplanation(prediction.explanation);
    const warnings = document.getElementById("result-warnings");
    warnings.replaceChildren(...prediction.warnings.map((text) => {
      const item = document.createElement("li");
      item.textContent = text;
      return item;
    }));
    document.getElementById("result-model").textContent = `${body.model.name} version ${body.model.version}`;
    document.getElementById("result").hidden = false;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    button.disabled = true;
    try {
      const query = new URLSearchParams({ model: form.dataset.model, version: form.dataset.version });
      if (explained) query.set("explain", "true");
      const headers = { "Content-Type": "application/json", Accept: "application/json" };
      const key = document.getElementById("api-key");
      if (key) headers["X-API-Key"] = key.value;
      const response = await fetch(`/predict?${query}`, {
        method: "POST",
        headers,
        body: JSON.stringify(record()),
      });
      const body = await response.json();
      if (response.ok) showPrediction(body);
      else {
        document.getElementById("result").hidden = true;
        showProblem(body);
      }
    } catch (error) {
      formError.textContent = `The server could not be reached: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });
})();
