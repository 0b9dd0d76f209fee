// pycvnn playground: the page. It keeps no model of its own; every number it draws comes from
// the server's /api (one session at a time), and every setting it offers comes from /api/options.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  const NEG = [245, 147, 34];
  const MID = [232, 234, 235];
  const POS = [8, 119, 189];
  const GRID = 64; // boundary size asked of the server (it is smoothed when scaled up)
  const WEIGHTS_EVERY_MS = 400; // how often a playing page refreshes the drawn weights
  const SPEEDS = [1, 2, 5, 10, 20, 50, 100];
  const POINT_STEPS = [10, 20, 50, 100, 200, 300, 500, 1000, 2000, 5000, 10000];

  // The page draws each input feature itself; the server computes the same ones from the names.
  const FEATURE_FN = {
    x1: (x) => x,
    x2: (x, y) => y,
    "x1^2": (x) => x * x,
    "x2^2": (x, y) => y * y,
    "x1*x2": (x, y) => x * y,
    "sin(x1)": (x) => Math.sin(x),
    "sin(x2)": (x, y) => Math.sin(y),
  };
  const FEATURE_LABEL = { "x1^2": "x1²", "x2^2": "x2²", "x1*x2": "x1·x2" };
  const OPTIMIZER_LABEL = { gd: "GD", momentum: "Momentum", rmsprop: "RMSProp", adam: "Adam", adamw: "AdamW" };
  // The momentum update's forms; the server's options give only the default one.
  const MOMENTUM_VARIANTS = [
    { suffix: "ema", label: "Momentum (EMA)", fixed: { form: "ema", nesterov: false } },
    { suffix: "heavy_ball", label: "Momentum (heavy ball)", fixed: { form: "heavy_ball", nesterov: false } },
    { suffix: "nesterov", label: "Nesterov", fixed: { form: "heavy_ball", nesterov: true } },
  ];

  const state = {
    options: null,
    config: null, // what the page sends: the server's last config plus the user's edits
    dropLoss: false, // the data's task changed: let the server pick its default loss
    id: null,
    kind: "classification",
    playing: false,
    speed: 5,
    batchMode: "mini",
    miniSize: 10,
    points: null,
    layers: null,
    boundary: null,
    history: { epoch: [], train: [], test: [] },
    weightsAt: 0,
    showTest: false,
    variants: [],
  };

  // ---- talking to the server -----------------------------------------------------------------

  async function api(method, path, body) {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (err) {
      throw new Error(`${method} ${path}: no answer from the server (${err.message})`);
    }
    if (res.status === 204) return null;
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const err = new Error(data && data.error ? data.error : `${method} ${path}: ${res.status} ${res.statusText}`);
      err.status = res.status;
      throw err;
    }
    if (data === null) throw new Error(`${method} ${path}: expected JSON, got ${JSON.stringify(text.slice(0, 80))}`);
    return data;
  }

  // Requests run one after another, so a frame never mixes two sessions.
  let queue = Promise.resolve();
  function serial(task) {
    const run = queue.then(task);
    queue = run.catch(() => {});
    return run;
  }

  function showError(message) {
    $("error-text").textContent = message;
    $("error").hidden = false;
  }
  function clearError() {
    $("error").hidden = true;
    $("error-text").textContent = "";
  }
  function fail(err) {
    setPlaying(false);
    showError(err && err.message ? err.message : String(err));
  }
  // A user's action: run it in turn; its success clears an old error, its failure shows one
  // and puts the controls back to the configuration the server holds (the handlers change
  // state.config before the server has accepted the change).
  function act(task) {
    return serial(task).then(clearError, (err) => {
      fail(err);
      if (!state.id) return undefined;
      return serial(async () => {
        await fetchSession();
        syncControls();
        layoutNetwork();
        draw();
      }).catch(() => {});
    });
  }

  // ---- sessions ------------------------------------------------------------------------------

  function trainingBody() {
    const c = state.config;
    return {
      optimizer: c.optimizer,
      batch_size: batchSize(),
      weight_decay: c.weight_decay,
      schedule: c.schedule,
    };
  }

  function sessionBody() {
    const body = { ...state.config, ...trainingBody() };
    if (state.dropLoss) delete body.loss;
    return body;
  }

  async function newSession() {
    const { id } = await api("POST", "/api/sessions", sessionBody());
    const old = state.id;
    state.id = id;
    document.body.dataset.session = id; // for scripts and tests driving the page
    state.dropLoss = false;
    state.history = { epoch: [], train: [], test: [] };
    if (old) {
      api("DELETE", `/api/sessions/${old}`).catch((err) => {
        if (err.status !== 404) showError(err.message);
      });
    }
    await fetchSession();
    showMetrics(null);
    syncControls();
    await fetchBoundary();
    layoutNetwork();
    draw();
  }

  async function fetchSession() {
    const s = await api("GET", `/api/sessions/${state.id}`);
    state.config = s.config;
    state.kind = state.options.datasets[s.config.dataset];
    state.points = s.points;
    state.maxEpochs = s.max_epochs;
    state.layers = s.layers;
    state.weightsAt = performance.now();
    setEpoch(s.epoch);
  }

  async function fetchBoundary() {
    state.boundary = await api("GET", `/api/sessions/${state.id}/boundary?size=${GRID}`);
  }

  async function train(epochs) {
    const r = await api("POST", `/api/sessions/${state.id}/train`, { epochs });
    setEpoch(r.epoch);
    showMetrics(r);
    const h = state.history;
    h.epoch.push(r.epoch);
    h.train.push(r.train_loss);
    h.test.push(r.test_loss);
    if (!state.playing || performance.now() - state.weightsAt > WEIGHTS_EVERY_MS) {
      await fetchSession();
    }
    await fetchBoundary();
    requestDraw();
  }

  // Draws at most once per display frame, with the latest data.
  let drawPending = false;
  function requestDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      draw();
    });
  }

  function patchTraining() {
    return act(async () => {
      const s = await api("PATCH", `/api/sessions/${state.id}`, trainingBody());
      if (s && s.config) state.config = s.config;
      if (s && s.max_epochs) state.maxEpochs = s.max_epochs;
    });
  }

  function restart() {
    return act(newSession);
  }

  // ---- play loop -----------------------------------------------------------------------------

  function setPlaying(on) {
    state.playing = on;
    const b = $("play");
    b.classList.toggle("playing", on);
    b.innerHTML = on ? "&#x275A;&#x275A;" : "&#x25B6;";
    b.title = on ? "Pause" : "Play";
  }

  const nextFrame = () => new Promise((resolve) => requestAnimationFrame(resolve));

  async function loop() {
    while (state.playing) {
      try {
        // The next request goes out as soon as this one is answered and a frame has passed.
        // No more epochs a call than the server allows this session (large data, batch 1).
        const epochs = Math.min(state.speed, state.maxEpochs || state.speed);
        await Promise.all([serial(() => train(epochs)), nextFrame()]);
      } catch (err) {
        fail(err);
        return;
      }
    }
  }

  function togglePlay() {
    if (state.playing) {
      setPlaying(false);
      // The loop draws the weights only now and then; show the ones it stopped at.
      act(async () => {
        await fetchSession();
        drawNetwork();
      });
      return;
    }
    clearError();
    setPlaying(true);
    loop();
  }

  // ---- controls ------------------------------------------------------------------------------

  function option(select, value, label) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = label;
    select.appendChild(o);
  }

  function pretty(name) {
    return name.replace(/_/g, " ");
  }

  // A typed value as JSON: a number when it reads as one, else the text (the server names it).
  function typed(input) {
    const text = input.value.trim();
    const num = Number(text);
    return text !== "" && Number.isFinite(num) ? num : text;
  }

  function buildVariants() {
    state.variants = [];
    for (const [name, hp] of Object.entries(state.options.optimizers)) {
      if ("form" in hp) {
        for (const v of MOMENTUM_VARIANTS) {
          if (v.fixed.nesterov && !("nesterov" in hp)) continue;
          state.variants.push({ key: `${name}:${v.suffix}`, label: v.label, name, fixed: v.fixed });
        }
      } else {
        state.variants.push({ key: name, label: OPTIMIZER_LABEL[name] || pretty(name), name, fixed: {} });
      }
    }
  }

  function variantOf(opt) {
    const match = state.variants.filter((v) => v.name === opt.name);
    return (
      match.find((v) => Object.entries(v.fixed).every(([k, val]) => opt[k] === val)) || match[0]
    );
  }

  // Inputs for a spec's options (every key of the registry's defaults but the fixed ones).
  function paramInputs(container, prefix, defaults, spec, fixed, onChange) {
    container.replaceChildren();
    for (const [key, def] of Object.entries(defaults)) {
      if (key in fixed) continue;
      const label = document.createElement("label");
      label.textContent = pretty(key);
      const input = document.createElement("input");
      input.id = `${prefix}-${key}`;
      const value = key in spec ? spec[key] : def;
      if (typeof def === "boolean") {
        input.type = "checkbox";
        input.checked = Boolean(value);
        input.addEventListener("change", () => onChange(key, input.checked));
      } else {
        input.type = typeof def === "number" || def === null ? "number" : "text";
        input.step = "any";
        input.value = value === null ? "" : String(value);
        input.addEventListener("change", () => onChange(key, typed(input)));
      }
      label.appendChild(input);
      container.appendChild(label);
    }
  }

  function buildControls() {
    const o = state.options;
    for (const s of SPEEDS) option($("speed"), s, String(s));
    for (const a of o.activations) option($("activation"), a, pretty(a));
    buildVariants();
    for (const v of state.variants) option($("optimizer"), v.key, v.label);
    for (const name of Object.keys(o.schedules)) option($("schedule"), name, pretty(name));

    const box = $("datasets");
    for (const kind of ["classification", "regression"]) {
      const names = Object.keys(o.datasets).filter((d) => o.datasets[d] === kind);
      if (!names.length) continue;
      const head = document.createElement("div");
      head.className = "kind";
      head.textContent = kind;
      box.appendChild(head);
      for (const name of names) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = pretty(name);
        b.dataset.dataset = name;
        b.id = `dataset-${name}`;
        b.addEventListener("click", () => {
          if (o.datasets[name] !== o.datasets[state.config.dataset]) state.dropLoss = true;
          state.config.dataset = name;
          restart();
        });
        box.appendChild(b);
      }
    }

    const lim = o.limits || {};
    const noise = lim.noise || [0, 0.5];
    $("noise").min = noise[0];
    $("noise").max = noise[1];
    const split = lim.train_fraction || [0.1, 0.9];
    $("split").min = split[0];
    $("split").max = split[1];
    const n = lim.n || [10, 10000];
    state.pointSteps = POINT_STEPS.filter((p) => p >= n[0] && p <= n[1]);
    $("n").min = 0;
    $("n").max = state.pointSteps.length - 1;
    $("n").step = 1;

    wireControls();
  }

  function wireControls() {
    $("play").addEventListener("click", togglePlay);
    $("step").addEventListener("click", () => act(() => train(1)));
    $("reset").addEventListener("click", () => {
      setPlaying(false);
      restart();
    });
    $("speed").addEventListener("change", () => {
      state.speed = Number($("speed").value);
    });
    $("error-close").addEventListener("click", clearError);

    const onData = (key, read) => (ev) => {
      state.config[key] = read(ev.target);
      restart();
    };
    $("activation").addEventListener("change", onData("activation", (t) => t.value));
    $("loss").addEventListener("change", onData("loss", (t) => t.value));
    $("noise").addEventListener("change", onData("noise", (t) => Number(t.value)));
    $("split").addEventListener("change", onData("train_fraction", (t) => Number(t.value)));
    $("n").addEventListener("change", onData("n", (t) => state.pointSteps[Number(t.value)]));
    $("seed").addEventListener("change", onData("seed", typed));
    $("noise").addEventListener("input", () => ($("noise-value").textContent = $("noise").value));
    $("split").addEventListener("input", () => showSplit(Number($("split").value)));
    $("n").addEventListener("input", () => ($("n-value").textContent = state.pointSteps[Number($("n").value)]));
    $("regenerate").addEventListener("click", () => {
      const seed = Number(state.config.seed);
      state.config.seed = Number.isInteger(seed) ? seed + 1 : 0;
      restart();
    });
    $("show-test").addEventListener("change", () => {
      state.showTest = $("show-test").checked;
      drawSurface();
    });

    $("lr").addEventListener("change", () => {
      state.config.optimizer = { ...state.config.optimizer, lr: typed($("lr")) };
      patchTraining();
    });
    $("weight-decay").addEventListener("change", () => {
      state.config.weight_decay = typed($("weight-decay"));
      patchTraining();
    });
    $("optimizer").addEventListener("change", () => {
      const v = state.variants.find((x) => x.key === $("optimizer").value);
      const defaults = state.options.optimizers[v.name];
      state.config.optimizer = { name: v.name, lr: state.config.optimizer.lr, ...defaults, ...v.fixed };
      showOptimizer();
      patchTraining();
    });
    $("schedule").addEventListener("change", () => {
      const name = $("schedule").value;
      state.config.schedule = { name, ...state.options.schedules[name] };
      showSchedule();
      patchTraining();
    });
    for (const b of document.querySelectorAll(".seg button")) {
      b.addEventListener("click", () => {
        state.batchMode = b.dataset.batch;
        showBatch();
        patchTraining();
      });
    }
    $("batch-size").addEventListener("change", () => {
      state.miniSize = typed($("batch-size"));
      state.batchMode = "mini";
      showBatch();
      patchTraining();
    });

    $("layer-add").addEventListener("click", () => changeLayers(+1));
    $("layer-remove").addEventListener("click", () => changeLayers(-1));
    window.addEventListener("resize", () => {
      layoutNetwork();
      draw();
    });
  }

  function batchSize() {
    if (state.batchMode === "full") return "full";
    if (state.batchMode === "one") return 1;
    return state.miniSize;
  }

  function changeLayers(delta) {
    const hidden = state.config.hidden.slice();
    if (delta > 0) hidden.push(hidden.length ? hidden[hidden.length - 1] : 2);
    else hidden.pop();
    state.config.hidden = hidden;
    restart();
  }

  function changeNeurons(layer, delta) {
    const hidden = state.config.hidden.slice();
    hidden[layer] += delta;
    state.config.hidden = hidden;
    restart();
  }

  function toggleFeature(name) {
    const on = new Set(state.config.features);
    if (on.has(name)) on.delete(name);
    else on.add(name);
    state.config.features = state.options.features.filter((f) => on.has(f));
    restart();
  }

  function showSplit(f) {
    $("split-value").textContent = `${Math.round(f * 100)}%`;
  }

  function showOptimizer() {
    const opt = state.config.optimizer;
    const v = variantOf(opt);
    $("optimizer").value = v.key;
    $("lr").value = opt.lr;
    paramInputs($("optimizer-params"), "opt", state.options.optimizers[v.name], opt, v.fixed, (k, val) => {
      state.config.optimizer = { ...state.config.optimizer, [k]: val };
      patchTraining();
    });
  }

  function showSchedule() {
    const s = state.config.schedule;
    $("schedule").value = s.name;
    paramInputs($("schedule-params"), "sched", state.options.schedules[s.name] || {}, s, {}, (k, val) => {
      state.config.schedule = { ...state.config.schedule, [k]: val };
      patchTraining();
    });
  }

  function showBatch() {
    for (const b of document.querySelectorAll(".seg button")) {
      b.classList.toggle("on", b.dataset.batch === state.batchMode);
    }
    $("batch-size").value = state.miniSize;
  }

  // Every control from state.config (after the server has completed and checked it).
  function syncControls() {
    const c = state.config;
    const o = state.options;
    $("activation").value = c.activation;
    const loss = $("loss");
    loss.replaceChildren();
    for (const l of o.losses[state.kind]) option(loss, l, pretty(l));
    loss.value = c.loss;
    $("weight-decay").value = c.weight_decay;
    showOptimizer();
    showSchedule();
    const bs = c.batch_size;
    if (bs === "full") state.batchMode = "full";
    else if (bs === 1 && !(state.batchMode === "mini" && state.miniSize === 1)) state.batchMode = "one";
    else {
      state.batchMode = "mini";
      state.miniSize = bs;
    }
    showBatch();
    for (const b of document.querySelectorAll("#datasets button")) {
      b.classList.toggle("on", b.dataset.dataset === c.dataset);
    }
    $("noise").value = c.noise;
    $("noise-value").textContent = c.noise;
    $("split").value = c.train_fraction;
    showSplit(c.train_fraction);
    let idx = state.pointSteps.indexOf(c.n);
    if (idx < 0) idx = state.pointSteps.findIndex((p) => p >= c.n);
    $("n").value = idx < 0 ? state.pointSteps.length - 1 : idx;
    $("n-value").textContent = c.n;
    $("seed").value = c.seed;
    $("speed").value = state.speed;
    const layers = c.hidden.length;
    $("layer-count").textContent = `${layers} hidden layer${layers === 1 ? "" : "s"}`;
    const lim = o.limits || {};
    $("layer-add").disabled = layers >= (lim.layers || 6);
    $("layer-remove").disabled = layers === 0;
    document.querySelector(".metrics").classList.toggle("regression", state.kind !== "classification");
  }

  function pad(epoch) {
    const s = String(epoch).padStart(6, "0");
    return s.length > 6 ? Number(epoch).toLocaleString("en-US") : `${s.slice(0, 3)},${s.slice(3)}`;
  }

  function setEpoch(epoch) {
    $("epoch").textContent = pad(epoch);
  }

  function fmt(x) {
    if (x === undefined || x === null) return "–";
    if (!Number.isFinite(x)) return String(x);
    const a = Math.abs(x);
    return a >= 1000 || (a > 0 && a < 0.001) ? x.toExponential(1) : x.toFixed(3);
  }

  function showMetrics(r) {
    $("train-loss").textContent = fmt(r && r.train_loss);
    $("test-loss").textContent = fmt(r && r.test_loss);
    $("train-acc").textContent = fmt(r && r.train_accuracy);
    $("test-acc").textContent = fmt(r && r.test_accuracy);
  }

  // ---- colours and grids ---------------------------------------------------------------------

  // t in [-1, 1] -> orange .. grey .. blue; soften mixes the colour toward white.
  function colour(t, soften) {
    if (!Number.isFinite(t)) t = 0;
    t = Math.max(-1, Math.min(1, t));
    const end = t < 0 ? NEG : POS;
    const a = Math.abs(t);
    const rgb = [0, 1, 2].map((i) => MID[i] + (end[i] - MID[i]) * a);
    return soften ? rgb.map((c) => c + (255 - c) * soften) : rgb;
  }

  // colour() sampled at LUT_N points of [-1, 1], per softening.
  const LUT_N = 256;
  const luts = new Map();
  function lutOf(soften) {
    if (!luts.has(soften)) {
      const table = new Uint8ClampedArray(LUT_N * 3);
      for (let i = 0; i < LUT_N; i++) table.set(colour(-1 + (2 * i) / (LUT_N - 1), soften), i * 3);
      luts.set(soften, table);
    }
    return luts.get(soften);
  }

  const scratch = document.createElement("canvas");
  scratch.width = scratch.height = GRID;

  // values: S*S, row 0 at the bottom of the plane; toT maps a value to [-1, 1].
  function paintGrid(canvas, values, size, toT, soften) {
    if (scratch.width !== size) scratch.width = scratch.height = size;
    const sctx = scratch.getContext("2d");
    const img = sctx.createImageData(size, size);
    const lut = lutOf(soften);
    const half = (LUT_N - 1) / 2;
    for (let r = 0; r < size; r++) {
      const row = (size - 1 - r) * size;
      for (let c = 0; c < size; c++) {
        const t = toT(values[r * size + c]);
        const i = Number.isFinite(t) ? Math.round((Math.max(-1, Math.min(1, t)) + 1) * half) : half | 0;
        const k = (row + c) * 4;
        img.data[k] = lut[i * 3];
        img.data[k + 1] = lut[i * 3 + 1];
        img.data[k + 2] = lut[i * 3 + 2];
        img.data[k + 3] = 255;
      }
    }
    sctx.putImageData(img, 0, 0);
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(scratch, 0, 0, canvas.width, canvas.height);
  }

  function symmetric(values) {
    let m = 0;
    for (const v of values) if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
    return m > 0 ? (v) => v / m : () => 0;
  }

  function outputScale() {
    const b = state.boundary;
    if (state.kind === "classification") return { lo: 0, hi: 1 };
    let lo = Infinity;
    let hi = -Infinity;
    for (const part of ["train", "test"]) {
      for (const p of (state.points && state.points[part]) || []) {
        lo = Math.min(lo, p[2]);
        hi = Math.max(hi, p[2]);
      }
    }
    if (!(hi > lo) && b && b.range) [lo, hi] = b.range;
    if (!(hi > lo)) [lo, hi] = [lo - 1, lo + 1];
    return { lo, hi };
  }

  function toTOf({ lo, hi }) {
    return (v) => (2 * (v - lo)) / (hi - lo) - 1;
  }

  function sizeCanvas(canvas, w, h) {
    const dpr = window.devicePixelRatio || 1;
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }

  // ---- drawing -------------------------------------------------------------------------------

  function draw() {
    drawSurface();
    drawCurves();
    drawNetwork();
  }

  function drawSurface() {
    const canvas = $("surface");
    const b = state.boundary;
    if (!b) return;
    const scale = outputScale();
    const toT = toTOf(scale);
    paintGrid(canvas, b.output, b.size, toT, 0.45);
    const ctx = canvas.getContext("2d");
    const [x0, x1, y0, y1] = b.extent;
    const W = canvas.width;
    const H = canvas.height;
    const dpr = W / canvas.clientWidth || 1;
    const px = (x) => ((x - x0) / (x1 - x0)) * W;
    const py = (y) => H - ((y - y0) / (y1 - y0)) * H;
    const parts = state.showTest ? ["train", "test"] : ["train"];
    for (const part of parts) {
      ctx.lineWidth = dpr;
      ctx.strokeStyle = part === "train" ? "#fff" : "#000";
      for (const p of (state.points && state.points[part]) || []) {
        const rgb = colour(state.kind === "classification" ? (p[2] > 0 ? 1 : -1) : toT(p[2]));
        ctx.fillStyle = `rgb(${rgb.join(",")})`;
        ctx.beginPath();
        ctx.arc(px(p[0]), py(p[1]), 3 * dpr, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      }
    }
    const digits = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));
    $("bar-lo").textContent = digits(scale.lo);
    $("bar-hi").textContent = digits(scale.hi);
  }

  function drawCurves() {
    const canvas = $("curves");
    const ctx = canvas.getContext("2d");
    const W = canvas.width;
    const H = canvas.height;
    const dpr = W / canvas.clientWidth || 1;
    ctx.clearRect(0, 0, W, H);
    const h = state.history;
    const n = h.epoch.length;
    if (!n) {
      $("curve-scale").textContent = "";
      return;
    }
    // A log scale: late progress stays visible next to the first epochs' large losses.
    let top = 0;
    let low = Infinity;
    for (const series of [h.train, h.test]) {
      for (const v of series) {
        if (Number.isFinite(v) && v > 0) {
          top = Math.max(top, v);
          low = Math.min(low, v);
        }
      }
    }
    if (!(top > 0)) [low, top] = [0.1, 1];
    if (top / low < 1.01) [low, top] = [low / 1.01, top * 1.01];
    const decades = Math.log(top / low);
    const first = n > 1 ? h.epoch[0] : 0;
    const span = Math.max(1, h.epoch[n - 1] - first);
    const pad = 3 * dpr;
    const x = (e) => pad + ((e - first) / span) * (W - 2 * pad);
    const y = (v) => H - pad - (Math.log(Math.min(Math.max(v, low), top) / low) / decades) * (H - 2 * pad);
    const stride = Math.max(1, Math.floor(n / W)); // at most about one point per pixel
    for (const [series, col] of [
      [h.train, "#999"],
      [h.test, "#111"],
    ]) {
      ctx.strokeStyle = col;
      ctx.lineWidth = 1.5 * dpr;
      ctx.beginPath();
      let started = false;
      for (let i = 0; i < n; i += i + stride < n ? stride : Math.max(1, n - 1 - i)) {
        if (!Number.isFinite(series[i])) continue;
        if (started) ctx.lineTo(x(h.epoch[i]), y(series[i]));
        else ctx.moveTo(x(h.epoch[i]), y(series[i]));
        started = true;
      }
      ctx.stroke();
    }
    $("curve-scale").textContent = `loss ${fmt(low)} – ${fmt(top)} (log), epochs ${first} – ${h.epoch[n - 1]}`;
  }

  // ---- the network diagram -------------------------------------------------------------------

  const net = { nodes: [], links: [] };
  const SVG = "http://www.w3.org/2000/svg";

  function thumb(x, y, size, cls, title) {
    const div = document.createElement("div");
    div.className = `node ${cls}`;
    div.style.left = `${x - size / 2}px`;
    div.style.top = `${y - size / 2}px`;
    const canvas = document.createElement("canvas");
    sizeCanvas(canvas, size, size);
    div.appendChild(canvas);
    if (title) div.dataset.tip = title;
    $("network").appendChild(div);
    return { div, canvas, x, y, size };
  }

  // Positions every node and link for the current config; drawNetwork colours them.
  function layoutNetwork() {
    const box = $("network");
    for (const el of box.querySelectorAll(".node, .layer-ctl")) el.remove();
    const svg = $("links");
    svg.replaceChildren();
    net.nodes = [];
    net.links = [];
    if (!state.config) return;
    const W = box.clientWidth;
    const H = box.clientHeight;
    const hidden = state.config.hidden;
    const nOut = state.layers && state.layers.length ? state.layers[state.layers.length - 1].W.length : 1;
    const cols = hidden.length + 2;
    const left = 64;
    const right = W - 34;
    const xs = Array.from({ length: cols }, (_, i) => left + (i * (right - left)) / (cols - 1));
    const top = 46; // room for each layer's +/- above its column
    const T = Math.max(22, Math.min(46, Math.floor((H - top) / 8) - 12));
    const column = (m, pitch) =>
      Array.from({ length: m }, (_, j) => top + (H - top) / 2 + (j - (m - 1) / 2) * pitch);

    const features = state.options.features;
    const featureYs = column(features.length, Math.min(T + 14, (H - top) / features.length));
    const inputs = [];
    features.forEach((name, j) => {
      const on = state.config.features.includes(name);
      const node = thumb(xs[0], featureYs[j], T, `feature${on ? "" : " off"}`,
        `${FEATURE_LABEL[name] || name}: click to turn ${on ? "off" : "on"}`);
      const label = document.createElement("span");
      label.className = "name";
      label.textContent = FEATURE_LABEL[name] || name;
      node.div.appendChild(label);
      node.div.id = `feature-${name}`;
      node.div.addEventListener("click", () => toggleFeature(name));
      node.feature = name;
      if (on) inputs.push(node);
      net.nodes.push(node);
    });

    const layersOfNodes = [inputs];
    const lim = state.options.limits || {};
    hidden.forEach((m, l) => {
      const ys = column(m, T + 12);
      const nodes = ys.map((y, j) => {
        const node = thumb(xs[l + 1], y, T, "hidden-unit");
        node.unit = [l, j];
        net.nodes.push(node);
        return node;
      });
      layersOfNodes.push(nodes);
      const ctl = document.createElement("div");
      ctl.className = "layer-ctl";
      ctl.style.left = `${xs[l + 1] - 30}px`;
      ctl.style.width = "60px";
      ctl.style.top = "0px";
      const buttons = document.createElement("div");
      for (const [sym, d, what] of [["+", 1, "Add a neuron"], ["−", -1, "Remove a neuron"]]) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = sym;
        b.title = what;
        b.disabled = d > 0 ? m >= (lim.neurons || 8) : m <= 1;
        b.addEventListener("click", () => changeNeurons(l, d));
        buttons.appendChild(b);
      }
      ctl.appendChild(buttons);
      const count = document.createElement("span");
      count.textContent = `${m} neuron${m === 1 ? "" : "s"}`;
      ctl.appendChild(count);
      box.appendChild(ctl);
    });

    const outSize = Math.min(48, T + 8);
    const outs = column(nOut, outSize + 12).map((y, k) => {
      const node = thumb(xs[cols - 1], y, outSize, "output-unit");
      node.output = k;
      net.nodes.push(node);
      return node;
    });
    layersOfNodes.push(outs);

    // One path to see and a wider transparent one to hover, per weight.
    for (let l = 0; l + 1 < layersOfNodes.length; l++) {
      const src = layersOfNodes[l];
      const dst = layersOfNodes[l + 1];
      dst.forEach((b, o) => {
        src.forEach((a, i) => {
          const x1 = a.x + a.size / 2;
          const x2 = b.x - b.size / 2;
          const dx = (x2 - x1) / 2;
          const d = `M${x1},${a.y} C${x1 + dx},${a.y} ${x2 - dx},${b.y} ${x2},${b.y}`;
          const link = document.createElementNS(SVG, "path");
          link.setAttribute("class", "link");
          link.setAttribute("d", d);
          const hit = document.createElementNS(SVG, "path");
          hit.setAttribute("class", "hit");
          hit.setAttribute("d", d);
          const entry = { link, l, o, i, from: a, to: b };
          hit.addEventListener("mouseenter", (ev) => hoverLink(entry, ev));
          hit.addEventListener("mousemove", (ev) => moveTip(ev));
          hit.addEventListener("mouseleave", () => unhover(entry));
          svg.appendChild(link);
          svg.appendChild(hit);
          net.links.push(entry);
        });
      });
    }
    for (const node of net.nodes) {
      node.div.addEventListener("mouseenter", (ev) => hoverNode(node, ev));
      node.div.addEventListener("mousemove", (ev) => moveTip(ev));
      node.div.addEventListener("mouseleave", () => ($("tooltip").hidden = true));
    }
    net.grids = null;
  }

  function nameOf(node) {
    if (node.feature) return FEATURE_LABEL[node.feature] || node.feature;
    if (node.unit) return `h${node.unit[0] + 1},${node.unit[1] + 1}`;
    return net.nodes.filter((n) => n.output !== undefined).length > 1 ? `out ${node.output}` : "out";
  }

  function weightOf(e) {
    const layer = state.layers && state.layers[e.l];
    return layer && layer.W[e.o] ? layer.W[e.o][e.i] : undefined;
  }

  function tip(text, ev) {
    const t = $("tooltip");
    t.textContent = text;
    t.hidden = false;
    moveTip(ev);
  }

  function moveTip(ev) {
    const t = $("tooltip");
    const r = $("net-panel").getBoundingClientRect();
    t.style.left = `${ev.clientX - r.left + 12}px`;
    t.style.top = `${ev.clientY - r.top + 12}px`;
  }

  function hoverLink(e, ev) {
    e.link.classList.add("hot");
    net.hovered = e;
    tip(`w = ${fmtWeight(weightOf(e))}  (${nameOf(e.from)} → ${nameOf(e.to)})`, ev);
  }

  function unhover(e) {
    e.link.classList.remove("hot");
    net.hovered = null;
    $("tooltip").hidden = true;
  }

  function hoverNode(node, ev) {
    if (node.feature) {
      tip(node.div.dataset.tip, ev);
      return;
    }
    const l = node.unit ? node.unit[0] : state.layers ? state.layers.length - 1 : 0;
    const j = node.unit ? node.unit[1] : node.output;
    const layer = state.layers && state.layers[l];
    const b = layer ? layer.b[j] : undefined;
    tip(`${nameOf(node)}: bias ${fmtWeight(b)}`, ev);
  }

  function fmtWeight(w) {
    return w === undefined ? "–" : Number(w).toFixed(3);
  }

  function featureGrids() {
    const b = state.boundary;
    const [x0, x1, y0, y1] = b.extent;
    const S = b.size;
    const grids = {};
    for (const name of state.options.features) {
      const f = FEATURE_FN[name];
      if (!f) continue;
      const g = new Float64Array(S * S);
      for (let r = 0; r < S; r++) {
        const y = y0 + ((y1 - y0) * r) / (S - 1);
        for (let c = 0; c < S; c++) g[r * S + c] = f(x0 + ((x1 - x0) * c) / (S - 1), y);
      }
      grids[name] = g;
    }
    return grids;
  }

  function drawNetwork() {
    const b = state.boundary;
    if (b) {
      if (!net.grids || net.gridsFor !== b.extent.join()) {
        net.grids = featureGrids();
        net.gridsFor = b.extent.join();
      }
      const scale = outputScale();
      const toT = toTOf(scale);
      let k = 0;
      for (const node of net.nodes) {
        if (node.feature) {
          const g = net.grids[node.feature];
          if (g && node.painted !== net.gridsFor) paintGrid(node.canvas, g, b.size, symmetric(g), 0);
          node.painted = net.gridsFor; // a feature's picture changes only with the extent
        } else if (node.unit) {
          const g = b.neurons[k++];
          if (g) paintGrid(node.canvas, g, b.size, symmetric(g), 0);
        } else if (state.kind === "classification" && node.output === 0 && nOutputs() > 1) {
          paintGrid(node.canvas, b.output, b.size, (v) => -toT(v), 0);
        } else {
          paintGrid(node.canvas, b.output, b.size, toT, 0);
        }
      }
    }
    for (const e of net.links) {
      const w = weightOf(e);
      if (w === undefined) continue;
      e.link.setAttribute("stroke", `rgb(${colour(w >= 0 ? 1 : -1).join(",")})`);
      e.link.setAttribute("stroke-width", Math.min(6, 0.4 + 1.6 * Math.abs(w)).toFixed(2));
    }
    if (net.hovered) $("tooltip").textContent = $("tooltip").textContent.replace(/^w = \S+/, `w = ${fmtWeight(weightOf(net.hovered))}`);
  }

  function nOutputs() {
    return net.nodes.filter((n) => n.output !== undefined).length;
  }

  // ---- start ---------------------------------------------------------------------------------

  async function start() {
    sizeCanvas($("surface"), 380, 380);
    sizeCanvas($("curves"), 380, 120);
    try {
      state.options = await api("GET", "/api/options");
      state.config = structuredClone(state.options.defaults);
      buildControls();
      await serial(newSession);
    } catch (err) {
      fail(err);
    }
  }

  window.addEventListener("error", (ev) => showError(`page error: ${ev.message}`));
  window.addEventListener("unhandledrejection", (ev) => showError(`page error: ${ev.reason}`));
  start();
})();
