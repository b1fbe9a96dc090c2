/*
 * shoal.js: the browser hand-off (see docs/architecture.md and the README, "The browser hand-off").
 *
 * A publisher includes it on its download page:
 *
 *   <script src="shoal.js" data-agent="http://127.0.0.1:6880"></script>
 *   <a href="https://dl.example.com/app.iso"
 *      data-shoal-torrent="https://dl.example.com/app.iso.torrent">Download</a>
 *
 * A release of several files is one torrent; each link names the file it
 * downloads by its path inside the release (the agent refuses a link to
 * such a release that names none, and the click goes to the origin):
 *
 *   <a href="https://dl.example.com/suite/docs/manual.pdf"
 *      data-shoal-torrent="https://dl.example.com/suite.torrent"
 *      data-shoal-file="docs/manual.pdf">Manual</a>
 *
 * When the visitor runs a shoal agent, a click on such a link asks the agent
 * to fetch the release; the browser then downloads the file from the agent,
 * which streams verified bytes in order, so the browser's own download
 * manager shows progress and saves the file. Without an agent (nothing
 * listening, a refusal, no answer in time) the link goes to its href, the
 * origin, exactly as it would without this script.
 *
 * The request is a CORS "simple" request (a POST with no body and no custom
 * header), so it needs no preflight; the agent checks the page's Origin
 * against the release's signed manifest and answers readable JSON only to
 * an origin it accepts. That answer only reserves the release: the agent
 * starts downloading when the browser opens the stream URL as a download
 * (the navigation below), so nothing moves that the visitor does not see
 * in the browser's download list. No dependencies; plain ES2018 for current
 * Chromium, Firefox and Safari.
 */
(function () {
  "use strict";

  var DEFAULT_AGENT = "http://127.0.0.1:6880";
  // A local agent answers in milliseconds; the visitor should never wait
  // long for a fallback because of it. The agent may have to fetch and
  // check the torrent first, hence not less.
  var HANDOFF_TIMEOUT_MS = 3000;
  var PROBE_TIMEOUT_MS = 1000;

  // document.currentScript exists only while this file first runs.
  var script = document.currentScript;
  var agent = ((script && script.getAttribute("data-agent")) || DEFAULT_AGENT)
    .replace(/\/+$/, "");

  // fetch with a deadline: a firewall that drops packets would otherwise
  // leave the click hanging until the browser's own (minutes-long) timeout.
  function fetchWithin(url, options, ms) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, ms);
    options.signal = controller.signal;
    return fetch(url, options).finally(function () { clearTimeout(timer); });
  }

  // Asks the agent to take over the download of `torrentUrl` (of the file
  // `file` inside it, when not null). Resolves to the agent's answer
  // ({stream_url, info_hash, name, size, release, file}); rejects with an
  // Error whose `reason` says why the origin should be used instead.
  function handoff(torrentUrl, file) {
    var url = agent + "/v1/handoff?torrent=" + encodeURIComponent(torrentUrl);
    // Passed as written: the agent compares it with the signed release's
    // own file paths and nothing else.
    if (file !== null) url += "&file=" + encodeURIComponent(file);
    // No credentials: the agent has no cookies to give and must not get
    // any; no-store: a hand-off is never answered from a cache.
    return fetchWithin(url, { method: "POST", credentials: "omit", cache: "no-store" },
      HANDOFF_TIMEOUT_MS)
      .then(function (response) {
        // A refusal carries no CORS header, so it usually rejects before
        // this point; a readable non-2xx answer is a refusal too.
        if (!response.ok) throw failure("refused", "the agent answered " + response.status);
        return response.json();
      }, function (error) {
        // The browser does not tell a refusal (no CORS header) from no
        // agent at all (connection refused): both are a TypeError.
        var timedOut = error && error.name === "AbortError";
        throw failure(timedOut ? "timeout" : "unavailable",
          timedOut ? "no answer from the agent in time" : "no agent answered, or it refused");
      })
      .then(function (answer) {
        if (!answer || typeof answer.stream_url !== "string" || !isAgentUrl(answer.stream_url)) {
          throw failure("refused", "the agent's answer has no stream URL");
        }
        return answer;
      });
  }

  function failure(reason, message) {
    var error = new Error(message);
    error.reason = reason;
    return error;
  }

  // Only ever send the browser to the agent itself: whatever answered on
  // the agent's port must not be able to redirect the visitor elsewhere.
  function isAgentUrl(text) {
    try {
      return new URL(text).origin === new URL(agent).origin;
    } catch (e) {
      return false;
    }
  }

  // Tells the page what happened (to show "downloading through shoal",
  // say): a `shoal:handoff` event on the link, which bubbles.
  function announce(link, detail) {
    link.dispatchEvent(new CustomEvent("shoal:handoff", { bubbles: true, detail: detail }));
  }

  // Clicks in flight, so that an impatient double click starts one download.
  var pending = new WeakSet();

  function download(link) {
    if (pending.has(link)) return Promise.resolve();
    pending.add(link);
    var torrent = new URL(link.getAttribute("data-shoal-torrent"), document.baseURI).href;
    var file = link.getAttribute("data-shoal-file");
    var origin = link.href;
    return handoff(torrent, file).then(function (answer) {
      announce(link, { via: "agent", stream_url: answer.stream_url, name: answer.name,
        size: answer.size, file: answer.file });
      // An attachment: the page stays, the download manager takes it.
      location.assign(answer.stream_url);
    }, function (error) {
      announce(link, { via: "origin", reason: error.reason, message: error.message });
      location.assign(origin);
    }).finally(function () {
      pending.delete(link);
    });
  }

  // One listener on the document also covers links added after load.
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element &&
      event.target.closest("a[href][data-shoal-torrent]");
    if (!link || event.defaultPrevented) return;
    // Middle click, Ctrl/Cmd/Shift/Alt-click: the visitor wants the
    // browser's own behaviour (a new tab, "save link as"), leave it alone.
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey ||
        event.altKey) return;
    event.preventDefault();
    download(link);
  });

  // For pages that want to say "you have shoal": resolves to true when
  // something answers on the agent's port. An opaque (no-cors) request
  // reads nothing, it only tells whether the connection succeeded.
  function agentAvailable() {
    return fetchWithin(agent + "/shoal.js", { mode: "no-cors", credentials: "omit",
      cache: "no-store" }, PROBE_TIMEOUT_MS)
      .then(function () { return true; }, function () { return false; });
  }

  window.shoal = Object.freeze({
    agent: agent,
    agentAvailable: agentAvailable,
    download: download,
  });
})();
