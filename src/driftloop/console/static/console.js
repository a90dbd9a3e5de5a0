// Feedback buttons post to the console, which forwards to the predictor's feedback API;
// a chosen image shows before it is sent; a running AutoML job's page refreshes itself
// when the job ends.
"use strict";

async function sendFeedback(requestId, body) {
  const status = document.getElementById("feedback-status");
  status.textContent = "sending…";
  const response = await fetch(`/api/feedback/${encodeURIComponent(requestId)}`, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  status.textContent = response.ok
    ? `feedback recorded: ${JSON.stringify(body)}`
    : `feedback refused: ${answer.detail || response.status}`;
  status.className = response.ok ? "succeeded" : "error";
}

function wireFeedback() {
  const answer = document.getElementById("answer");
  if (!answer) return;
  const requestId = answer.dataset.requestId;
  for (const button of answer.querySelectorAll("button[data-feedback]")) {
    button.addEventListener("click", () => sendFeedback(requestId, JSON.parse(button.dataset.feedback)));
  }
  const valueButton = document.getElementById("send-value");
  valueButton.addEventListener("click", () => {
    const text = document.getElementById("truth-value").value.trim();
    let value;
    try { value = JSON.parse(text); } catch (_) { value = text; }
    sendFeedback(requestId, {value});
  });
}

function wirePreviews() {
  for (const input of document.querySelectorAll("input[type=file][data-preview]")) {
    const preview = document.getElementById(input.dataset.preview);
    input.addEventListener("change", () => {
      const file = input.files[0];
      if (preview.src) URL.revokeObjectURL(preview.src);
      const isImage = Boolean(file) && file.type.startsWith("image/");
      preview.hidden = !isImage;
      if (isImage) preview.src = URL.createObjectURL(file);
    });
  }
}

function followJob() {
  const state = document.getElementById("job-state");
  if (!state || state.textContent !== "running") return;
  const log = document.getElementById("job-log");
  const poll = async () => {
    const response = await fetch(`/api/automl/jobs/${state.dataset.job}`);
    if (!response.ok) return;
    const job = await response.json();
    if (job.state !== "running") { window.location.reload(); return; }
    if (log) log.textContent = job.log;
    setTimeout(poll, 1500);
  };
  setTimeout(poll, 1500);
}

document.addEventListener("DOMContentLoaded", () => { wireFeedback(); wirePreviews(); followJob(); });
