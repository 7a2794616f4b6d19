/*
 * dolon's live page: every few seconds, status.json gives the tracers of
 * the server (with the values of their last sample) and the collector's
 * latest runs; the chart of a run is fetched again when it has new rows,
 * is on the screen, and was fetched at least CHART_REFRESH_MS before: a
 * chart costs the server a read of the rows it spans.
 * Everything is written as text nodes: names and values from the server
 * never become markup.  A chart is the server's own SVG document, parsed
 * as SVG and placed in the page.
 */
'use strict';

(function () {
  const REFRESH_MS = 3000;
  const CHART_REFRESH_MS = 6000;
  const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });
  const charts = new Map();    /* run uuid -> { card, lastRow, fetched, visible } */
  const onScreen = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const chart = charts.get(entry.target.dataset.run);
      if (chart !== undefined)
        chart.visible = entry.isIntersecting;
    }
  });

  function element(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {}))
      node.setAttribute(name, value);
    for (const child of children)
      node.append(child);
    return node;
  }

  function formatNumber(value) {
    if (value === null)
      return '\u2014';
    if (value !== 0 && (Math.abs(value) >= 1e15 || Math.abs(value) < 1e-3))
      return value.toExponential(3);
    return numberFormat.format(value);
  }

  function count(n, noun) {
    return formatNumber(n) + ' ' + noun + (n === 1 ? '' : 's');
  }

  function formatAge(ms, now) {
    const seconds = Math.max(0, Math.round((now - ms) / 1000));
    if (seconds < 120)
      return seconds + ' s ago';
    if (seconds < 7200)
      return Math.round(seconds / 60) + ' min ago';
    return new Date(ms).toLocaleString();
  }

  function tracerCard(tracer, now) {
    const card = element('article', { class: 'card tracer', 'data-tracer': tracer.name });
    const badge = element('span', { class: tracer.running ? 'badge running' : 'badge' },
      tracer.running ? 'running' : 'stopped');
    card.append(element('div', { class: 'card-head' },
      element('h3', {}, tracer.name + (tracer.configured ? ' (configured)' : '')), badge));

    const facts = [];
    if (tracer.host)
      facts.push('to ' + (tracer.protocol && tracer.protocol !== 'mnemic' ? tracer.protocol + '://' : '') +
                 tracer.host + ':' + tracer.port);
    if (tracer.frequency_ms)
      facts.push('every ' + formatNumber(tracer.frequency_ms) + ' ms');
    facts.push(count(tracer.samples, 'sample'), count(tracer.rows_sent, 'row') + ' sent');
    if (tracer.mean_sample_us !== null)
      facts.push(formatNumber(Number(tracer.mean_sample_us.toPrecision(3))) + ' \u00b5s a sample');
    if (tracer.sampled !== null)
      facts.push('last sample ' + formatAge(tracer.sampled, now));
    card.append(element('p', { class: 'facts' }, facts.join(' \u00b7 ')));

    if (tracer.send_errors > 0 || tracer.profiler_errors > 0 || tracer.last_error)
      card.append(element('p', { class: 'error' },
        count(tracer.send_errors, 'send error') + ', ' +
        count(tracer.profiler_errors, 'profiler error') +
        (tracer.last_error ? '; the last: ' + tracer.last_error : '')));

    if (tracer.values.length === 0) {
      card.append(element('p', { class: 'empty' }, 'No sample yet.'));
      return card;
    }
    const table = element('table', { class: 'values' });
    for (const [column, value] of tracer.values)
      table.append(element('tr', { 'data-column': column },
        element('td', {}, column),
        element('td', { class: 'value', 'data-value': value === null ? '' : String(value) },
          formatNumber(value))));
    card.append(table);
    if (tracer.columns > tracer.values.length)
      card.append(element('p', { class: 'facts' },
        'The first ' + tracer.values.length + ' of ' + tracer.columns + ' columns.'));
    return card;
  }

  function showTracers(status) {
    const now = status.server.now;
    const cards = status.tracers.map((tracer) => tracerCard(tracer, now));
    document.getElementById('tracers').replaceChildren(
      ...(cards.length > 0 ? cards : [element('p', { class: 'empty' }, 'No tracer.')]));
  }

  async function fetchChart(run, chart) {
    const response = await fetch('runs/' + run.uuid + '.svg', { cache: 'no-store' });
    if (!response.ok)
      return;
    const parsed = new DOMParser().parseFromString(await response.text(), 'image/svg+xml');
    const svg = parsed.documentElement;
    if (svg.namespaceURI !== 'http://www.w3.org/2000/svg')
      return;
    svg.removeAttribute('width');
    svg.removeAttribute('height');
    chart.card.querySelector('.chart').replaceChildren(document.importNode(svg, true));
    chart.lastRow = run.last_row;
  }

  function chartDue(chart, run, now) {
    if (now - chart.fetched < CHART_REFRESH_MS)
      return false;
    if (chart.lastRow === undefined)
      return true;    /* never drawn, or its last fetch failed */
    return chart.visible && chart.lastRow !== run.last_row;
  }

  async function showCollector(status) {
    const section = document.getElementById('collector-section');
    const collector = status.collector;
    section.hidden = collector === null;
    if (collector === null)
      return;
    document.getElementById('collector').textContent =
      (collector.running ? 'Listening on port ' + collector.port : 'Not running') +
      ' \u00b7 ' + count(collector.received, 'datagram') + ' received \u00b7 ' +
      count(collector.stored_rows, 'row') + ' stored' +
      (collector.malformed + collector.dropped > 0 ?
        ' \u00b7 ' + formatNumber(collector.malformed) + ' malformed, ' +
        formatNumber(collector.dropped) + ' dropped' : '');

    const runs = collector.runs || [];
    const cards = [];
    const fetches = [];
    for (const run of runs) {
      let chart = charts.get(run.uuid);
      if (chart === undefined) {
        chart = {
          card: element('article', { class: 'card run', 'data-run': run.uuid },
            element('div', { class: 'card-head' }, element('h3', {}, run.app_name)),
            element('p', { class: 'facts' }), element('div', { class: 'chart' })),
          lastRow: undefined,
          fetched: 0,
          visible: true
        };
        charts.set(run.uuid, chart);
        onScreen.observe(chart.card);
      }
      chart.card.querySelector('.facts').textContent =
        'started ' + new Date(run.started).toLocaleString() + ' \u00b7 ' +
        (run.last_row === null ? 'no rows yet' : 'last row ' + formatAge(run.last_row, status.server.now));
      if (chartDue(chart, run, Date.now())) {
        chart.fetched = Date.now();
        fetches.push(fetchChart(run, chart));
      }
      cards.push(chart.card);
    }
    for (const [uuid, chart] of charts)
      if (!runs.some((run) => run.uuid === uuid)) {
        onScreen.unobserve(chart.card);
        charts.delete(uuid);
      }
    document.getElementById('runs').replaceChildren(
      ...(cards.length > 0 ? cards : [element('p', { class: 'empty' }, 'No run stored yet.')]));
    await Promise.all(fetches);
  }

  async function refresh() {
    const updated = document.getElementById('updated');
    try {
      const response = await fetch('status.json', { cache: 'no-store' });
      if (!response.ok)
        throw new Error('the server answered ' + response.status);
      const status = await response.json();
      document.getElementById('server').textContent = status.server.name;
      document.title = 'dolon \u00b7 ' + status.server.name;
      document.getElementById('summary').textContent =
        'PostgreSQL ' + status.server.version + ' \u00b7 database ' + status.server.database +
        ' \u00b7 up since ' + new Date(status.server.started).toLocaleString();
      showTracers(status);
      await showCollector(status);
      updated.textContent = 'Updated ' + new Date().toLocaleTimeString() + '.';
      document.body.dataset.state = 'live';
    } catch (error) {
      updated.textContent = 'Cannot reach the server: ' + error.message + '.';
      document.body.dataset.state = 'offline';
    } finally {
      setTimeout(refresh, REFRESH_MS);
    }
  }

  refresh();
}());
