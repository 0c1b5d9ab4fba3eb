// The form posts one JSON record to /predict and shows the label, a bar per class
// probability, warnings, and per-field errors from the problem+json response.
(function () {
  "use strict";
  const form = document.getElementById("predict-form");
  const button = document.getElementById("predict-button");
  const formError = document.getElementById("form-error");

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

  function showPrediction(body) {
    const prediction = body.predictions[0];
    document.getElementById("result-label").textContent = String(prediction.label);
    const bars = document.getElementById("result-bars");
    bars.replaceChildren();
    for (const [label, probability] of Object.entries(prediction.probabilities)) {
      const row = document.createElement("div");
      row.className = "bar" + (label === String(prediction.label) ? " best" : "");
      row.dataset.label = label;
      const name = document.createElement("span");
      name.textContent = label;
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
