// The region editor: paint over the part of the image to change (mouse, pen and touch through
// pointer events), say what should change, submit, then watch for the result. Every sentence it
// shows comes from the page (data-* attributes) or from the bot's answers.
"use strict";

(() => {
  const main = document.getElementById("editor");
  const picture = document.getElementById("picture");
  const paint = document.getElementById("paint");
  const context = paint.getContext("2d");
  const size = document.getElementById("size");
  const brush = document.getElementById("brush");
  const eraser = document.getElementById("eraser");
  const form = document.getElementById("form");
  const instruction = document.getElementById("instruction");
  const submit = document.getElementById("submit");
  const statusLine = document.getElementById("status");
  const result = document.getElementById("result");
  const resultImage = document.getElementById("result-image");
  const token = main.dataset.token;
  const INK = "rgb(255, 40, 120)";
  const POLL_MS = 3000;

  // Everything painted, in order, so Undo can draw the rest again: strokes and clears.
  const actions = [];
  let stroke = null;
  let erasing = false;

  function say(text) {
    statusLine.textContent = text || "";
  }

  function fit() {
    paint.width = picture.naturalWidth;
    paint.height = picture.naturalHeight;
    redraw();
  }
  if (picture.complete && picture.naturalWidth) fit();
  else picture.addEventListener("load", fit);

  function at(event) {
    const box = paint.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * paint.width) / box.width,
      y: ((event.clientY - box.top) * paint.height) / box.height,
    };
  }

  function segment(action, from, to) {
    context.globalCompositeOperation = action.erase ? "destination-out" : "source-over";
    context.strokeStyle = INK;
    context.lineWidth = action.width;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x, to.y);
    context.stroke();
  }

  function draw(action) {
    if (action.clear) {
      context.clearRect(0, 0, paint.width, paint.height);
      return;
    }
    action.points.forEach((point, i) => segment(action, action.points[Math.max(0, i - 1)], point));
  }

  function redraw() {
    context.clearRect(0, 0, paint.width, paint.height);
    actions.forEach(draw);
  }

  paint.addEventListener("pointerdown", (event) => {
    if (stroke !== null || !paint.width || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    paint.setPointerCapture(event.pointerId);
    paint.dataset.pointerType = event.pointerType;
    const scale = paint.width / paint.getBoundingClientRect().width;
    stroke = { id: event.pointerId, erase: erasing, width: Number(size.value) * scale, points: [at(event)] };
    actions.push(stroke);
    segment(stroke, stroke.points[0], stroke.points[0]);
  });

  paint.addEventListener("pointermove", (event) => {
    if (stroke === null || event.pointerId !== stroke.id) return;
    event.preventDefault();
    const coalesced = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of coalesced.length ? coalesced : [event]) {
      const point = at(each);
      segment(stroke, stroke.points[stroke.points.length - 1], point);
      stroke.points.push(point);
    }
  });

  function endStroke(event) {
    if (stroke !== null && event.pointerId === stroke.id) stroke = null;
  }
  paint.addEventListener("pointerup", endStroke);
  paint.addEventListener("pointercancel", endStroke);

  function useEraser(on) {
    erasing = on;
    brush.setAttribute("aria-pressed", String(!on));
    eraser.setAttribute("aria-pressed", String(on));
  }
  brush.addEventListener("click", () => useEraser(false));
  eraser.addEventListener("click", () => useEraser(true));
  document.getElementById("undo").addEventListener("click", () => {
    actions.pop();
    redraw();
  });
  document.getElementById("clear").addEventListener("click", () => {
    actions.push({ clear: true });
    redraw();
  });

  function anythingPainted() {
    if (!paint.width) return false;
    const alpha = context.getImageData(0, 0, paint.width, paint.height).data;
    for (let i = 3; i < alpha.length; i += 4) if (alpha[i] >= 128) return true;
    return false;
  }

  async function answerOf(response) {
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("json")) return response.json();
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    return { message: page.body.textContent.trim() };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!anythingPainted()) return say(main.dataset.nothing);
    if (!instruction.value.trim()) return say(main.dataset.noText);
    submit.disabled = true;
    say(main.dataset.sending);
    const mask = await new Promise((resolve) => paint.toBlob(resolve, "image/png"));
    const body = new FormData();
    body.append("mask", mask, "mask.png");
    body.append("instruction", instruction.value);
    let response;
    try {
      response = await fetch(token, { method: "POST", body, credentials: "omit", cache: "no-store" });
    } catch {
      submit.disabled = false;
      return say(main.dataset.failed);
    }
    const answer = await answerOf(response);
    say(answer.message);
    if (!response.ok) {
      submit.disabled = response.status === 403;
      return;
    }
    main.classList.add("sent");
    main.dataset.sent = "true";
    watch(answer.result);
  });

  async function watch(address) {
    let answer;
    try {
      const response = await fetch(address, { credentials: "omit", cache: "no-store" });
      answer = await answerOf(response);
      if (!response.ok) return say(answer.message);
    } catch {
      return setTimeout(() => watch(address), POLL_MS);
    }
    // While it is pending the page keeps saying where to look.
    if (answer.state !== "pending") say(answer.message);
    if (answer.state === "done" && answer.image) {
      resultImage.src = answer.image;
      result.hidden = false;
    } else if (answer.state === "pending") {
      setTimeout(() => watch(address), POLL_MS);
    }
  }
})();
