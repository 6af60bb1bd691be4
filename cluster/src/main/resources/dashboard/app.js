// The moelora dashboard page: the panels are rendered by the server (the same markup as
// `moelora report`); this script picks the run, follows the server-sent events and swaps the
// panels in when the run's files changed, and drives the step slider of the heatmaps.
'use strict';
(function () {
  const $ = (selector) => document.querySelector(selector);
  const state = {
    experiment: false, runs: [], tab: null,      // tab: a run's name, or '' for the experiment's comparison
    follow: true, steps: [], step: -1,
    timer: null, busy: false, again: false, heatmapBusy: false, heatmapWanted: null,
    html: {}, lastEvent: 0,
  };
  const slider = $('#step-slider');
  const follow = $('#follow');
  const form = $('#alarm-settings');

  function query(extra) {
    const p = new URLSearchParams({ run: state.tab, dead: form.dead.value || '20', collapse: form.collapse.value || '1.5', cosine: form.cosine.value || '0.95' });
    for (const [k, v] of Object.entries(extra)) p.set(k, String(v));
    return p.toString();
  }

  async function getJson(url) {
    const response = await fetch(url, { cache: 'no-store' });
    if (!response.ok) throw new Error(url + ': ' + response.status + ' ' + (await response.text()));
    return response.json();
  }

  function showError(error) {
    const banner = $('#error');
    banner.textContent = error ? String(error.message || error) : '';
    banner.hidden = !error;
  }

  function setFragment(name, html) {
    if (state.html[name] === html) return;
    const el = document.querySelector('[data-fragment="' + name + '"]');
    if (!el) return;
    // keep what the reader opened or closed
    const open = {};
    el.querySelectorAll('details').forEach((d) => { open[d.className] = d.open; });
    el.innerHTML = html;
    el.querySelectorAll('details').forEach((d) => { if (d.className in open) d.open = open[d.className]; });
    state.html[name] = html;
  }

  function tabFromHash() {
    const m = /^#run=(.*)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  async function loadRuns() {
    const data = await getJson('api/runs');
    state.experiment = data.experiment;
    state.runs = data.runs;
    $('#root').textContent = data.root;
    renderTabs();
    const valid = (t) => t === '' ? state.experiment : state.runs.some((r) => r.name === t);
    if (state.tab === null || !valid(state.tab)) {
      const wanted = tabFromHash();
      const first = state.experiment ? '' : (state.runs.length ? state.runs[0].name : null);
      selectTab(wanted !== null && valid(wanted) ? wanted : first);
    } else {
      renderTabs();
    }
  }

  function renderTabs() {
    const nav = $('#tabs');
    nav.textContent = '';
    const add = (tab, label, title) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'tab' + (tab === state.tab ? ' active' : '');
      b.dataset.tab = tab;
      b.textContent = label;
      if (title) b.title = title;
      b.addEventListener('click', () => selectTab(tab));
      nav.appendChild(b);
    };
    if (state.experiment) add('', 'experiment', 'all runs side by side');
    for (const r of state.runs) add(r.name, r.name, (r.adapter ? r.adapter + ' · ' : '') + r.status + ' · step ' + r.step + (r.steps ? ' / ' + r.steps : ''));
  }

  function selectTab(tab) {
    if (tab === null) {
      $('#run-view').hidden = true;
      $('#comparison-view').hidden = true;
      return;
    }
    const changed = tab !== state.tab;
    state.tab = tab;
    if (changed) {
      state.follow = true;
      follow.checked = true;
      state.html = {};
      history.replaceState(null, '', '#run=' + encodeURIComponent(tab));
    }
    $('#run-view').hidden = tab === '';
    $('#comparison-view').hidden = tab !== '';
    renderTabs();
    refresh();
  }

  function scheduleRefresh(delay) {
    if (state.timer !== null) return;
    state.timer = setTimeout(() => { state.timer = null; refresh(); }, delay === undefined ? 250 : delay);
  }

  async function refresh() {
    if (state.tab === null) return;
    if (state.busy) { state.again = true; return; }
    state.busy = true;
    try {
      if (state.tab === '') {
        const data = await getJson('api/comparison');
        setFragment('comparison', data.html);
      } else {
        const view = await getJson('api/view?' + query({ step: state.follow ? -1 : state.step }));
        if (view.run !== state.tab) return;
        for (const [name, html] of Object.entries(view.fragments)) setFragment(name, html);
        updateSlider(view.steps, view.step);
      }
      showError(null);
    } catch (error) {
      showError(error);
    } finally {
      state.busy = false;
      if (state.again) { state.again = false; scheduleRefresh(0); }
    }
  }

  function updateSlider(steps, step) {
    state.steps = steps;
    state.step = step;
    $('#step-controls').hidden = steps.length === 0;
    slider.max = String(Math.max(0, steps.length - 1));
    const i = steps.indexOf(step);
    if (i >= 0) slider.value = String(i);
    $('#step-label').textContent = step >= 0 ? String(step) + ' of ' + (steps.length ? steps[steps.length - 1] : step) : '';
  }

  async function loadHeatmap(step) {
    state.heatmapWanted = step;
    if (state.heatmapBusy) return;
    state.heatmapBusy = true;
    try {
      while (state.heatmapWanted !== null) {
        const wanted = state.heatmapWanted;
        state.heatmapWanted = null;
        const view = await getJson('api/heatmap?' + query({ step: wanted }));
        if (view.run !== state.tab || state.follow) continue;
        // the reader may still be moving the slider: take the steps, leave its position alone
        setFragment('heatmaps', view.fragments.heatmaps);
        state.steps = view.steps;
        slider.max = String(Math.max(0, view.steps.length - 1));
      }
      showError(null);
    } catch (error) {
      showError(error);
    } finally {
      state.heatmapBusy = false;
    }
  }

  slider.addEventListener('input', () => {
    const i = Number(slider.value);
    const step = state.steps[i];
    if (step === undefined) return;
    state.follow = i === state.steps.length - 1;
    follow.checked = state.follow;
    state.step = step;
    $('#step-label').textContent = String(step) + ' of ' + state.steps[state.steps.length - 1];
    if (state.follow) refresh(); else loadHeatmap(step);
  });

  follow.addEventListener('change', () => {
    state.follow = follow.checked;
    refresh();
  });

  form.addEventListener('submit', (e) => e.preventDefault());
  form.addEventListener('change', () => { state.html = {}; refresh(); });

  function setConnection(text, kind) {
    const c = $('#connection');
    c.textContent = text;
    c.dataset.state = kind;
  }

  function connect() {
    const source = new EventSource('events');
    const touched = (run) => {
      state.lastEvent = Date.now();
      if (state.tab === '' || run === state.tab || run === '*') scheduleRefresh();
    };
    source.addEventListener('hello', () => {
      setConnection('live', 'live');
      // events may have been missed while disconnected: start again from the API
      loadRuns().then(() => scheduleRefresh(0)).catch(showError);
    });
    source.addEventListener('record', (e) => touched(JSON.parse(e.data).run));
    source.addEventListener('file', (e) => touched(JSON.parse(e.data).run));
    source.addEventListener('reset', (e) => {
      state.html = {};
      const run = JSON.parse(e.data).run;
      if (run === '*') loadRuns().catch(showError);
      touched(run);
    });
    source.addEventListener('run', () => loadRuns().catch(showError));
    source.onerror = () => setConnection('reconnecting…', 'down');
  }

  setInterval(() => {
    if ($('#connection').dataset.state !== 'live' || !state.lastEvent) return;
    const s = Math.round((Date.now() - state.lastEvent) / 1000);
    $('#connection').textContent = s < 2 ? 'live · updated now' : 'live · last record ' + s + ' s ago';
  }, 1000);

  connect();
})();
