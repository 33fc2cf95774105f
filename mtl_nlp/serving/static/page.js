// The page to try a served model: it reads GET /v1/model, sends the text to POST /v1/predict and shows each
// task's result by its shape: entities highlighted in the text, a label with its probability, an answer span.
// Text from the user and the model is only ever inserted as text nodes, never as HTML.
"use strict";

const form = document.getElementById("predict-form");
const textField = document.getElementById("text");
const questionField = document.getElementById("question");
const keyField = document.getElementById("api-key");
const submitButton = document.getElementById("submit");
const statusLine = document.getElementById("status");
const errorBox = document.getElementById("error");
const results = document.getElementById("results");
let modelTasks = [];

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function hue(label) {
  let hash = 0;
  for (const character of label) hash = (hash * 31 + character.charCodeAt(0)) % 360;
  return hash;
}

function percent(score) {
  return `${(100 * score).toFixed(1)}%`;
}

function headers() {
  const given = { "Content-Type": "application/json" };
  if (keyField.value) given["Authorization"] = `Bearer ${keyField.value}`;
  return given;
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

async function apiError(response) {
  let message = `The server answered ${response.status} ${response.statusText}.`;
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) {
      const field = body.error.field ? ` (field: ${body.error.field})` : "";
      message = `Error ${response.status}: ${body.error.message}${field}`;
    }
  } catch (ignored) {
    // not JSON: keep the status line
  }
  if (response.status === 401) {
    document.getElementById("key-field").hidden = false;
    keyField.focus();
  }
  const retry = response.headers.get("Retry-After");
  return retry ? `${message} Try again in ${retry} s.` : message;
}

// The text with spans [start, end) highlighted: each span becomes a <mark> with its label and score.
function annotated(text, spans, task) {
  const container = element("p", { class: "annotated", "data-task": task });
  let position = 0;
  for (const span of [...spans].sort((a, b) => a.start - b.start)) {
    if (span.start < position) continue;
    container.append(text.slice(position, span.start));
    const mark = element("mark", {
      "data-task": task,
      "data-label": span.label,
      "data-start": String(span.start),
      "data-end": String(span.end),
      title: `${span.label} ${percent(span.score)}`,
    });
    mark.style.setProperty("--hue", String(hue(span.label)));  // through the CSSOM, which the page's CSP allows
    mark.append(text.slice(span.start, span.end));
    mark.append(element("span", { class: "tag" }, [`${span.label} ${percent(span.score)}`]));
    container.append(mark);
    position = span.end;
  }
  container.append(text.slice(position));
  return container;
}

function renderTask(text, task, output) {
  const section = element("section", { class: "task", "data-task": task, "aria-label": `Task ${task}` });
  section.append(element("h2", {}, [task]));
  if (Array.isArray(output)) {
    const spans = output.map((item) => ({
      start: item.start, end: item.end, label: item.entity_group ?? item.entity, score: item.score,
    }));
    section.append(annotated(text, spans, task));
    if (spans.length === 0) section.append(element("p", { class: "none" }, ["No entities found."]));
  } else if (output && "answer" in output) {
    if (output.answer === "") {
      section.append(element("p", { class: "none" }, ["No answer in the text."]));
    } else {
      section.append(annotated(text, [{ start: output.start, end: output.end, label: "answer", score: output.score }], task));
    }
  } else if (output && "label" in output) {
    const row = element("p", { class: "classification", "data-task": task, "data-label": output.label });
    row.append(element("span", { class: "label" }, [output.label]));
    row.append(element("meter", { min: "0", max: "1", value: String(output.score), "aria-label": `probability of ${output.label}` }));
    row.append(element("span", { class: "score" }, [percent(output.score)]));
    section.append(row);
  } else if (output && "labels" in output) {
    const list = element("ul", { "data-task": task });
    for (const [label, score] of Object.entries(output.scores)) {
      const chosen = output.labels.includes(label) ? " (predicted)" : "";
      list.append(element("li", {}, [`${label}: ${percent(score)}${chosen}`]));
    }
    section.append(list);
  } else if (output && "score" in output) {
    section.append(element("p", { "data-task": task }, [`Score: ${Number(output.score).toFixed(4)}`]));
  }
  return section;
}

async function describeModel() {
  const summary = document.getElementById("model-summary");
  const response = await fetch("/v1/model", { headers: headers() });
  if (!response.ok) {
    summary.textContent = response.status === 503 ? "The model is loading; reload in a moment." : "";
    if (response.status !== 503) showError(await apiError(response));
    return;
  }
  const model = await response.json();
  modelTasks = model.tasks;
  const names = model.tasks.map((task) => `${task.name} (${task.type.replaceAll("_", " ")})`);
  const quantized = model.quantization ? `, ${model.quantization}` : "";
  summary.textContent = `${model.backbone.model_type} backbone on ${model.backend}${quantized}; tasks: ${names.join(", ")}.`;
  document.getElementById("question-field").hidden = !model.tasks.some((task) => task.needs_question);
}

async function predict(event) {
  event.preventDefault();
  errorBox.hidden = true;
  const text = textField.value;
  if (!text.trim()) {
    showError("Type or paste some text first.");
    textField.focus();
    return;
  }
  const body = { texts: [text] };
  if (!document.getElementById("question-field").hidden && questionField.value.trim()) {
    body.questions = [questionField.value];
  }
  submitButton.disabled = true;
  statusLine.textContent = "Analysing…";
  try {
    const response = await fetch("/v1/predict", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!response.ok) {
      statusLine.textContent = "";
      showError(await apiError(response));
      return;
    }
    const answer = await response.json();
    const result = answer.results[0];
    results.replaceChildren(...Object.entries(result)
      .filter(([task]) => task !== "text")
      .map(([task, output]) => renderTask(result.text, task, output)));
    statusLine.textContent = "Done.";
    if (modelTasks.length === 0) describeModel();
  } catch (error) {
    statusLine.textContent = "";
    showError(`The server could not be reached (${error.message}).`);
  } finally {
    submitButton.disabled = false;
  }
}

form.addEventListener("submit", predict);
textField.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
});
describeModel().catch((error) => showError(`The server could not be reached (${error.message}).`));
