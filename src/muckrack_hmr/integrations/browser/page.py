"""What ``--reload-browser`` adds to a page: the script, where it goes, and who may listen.

The script is injected before the last ``</body>`` of an HTML response: a
fragment without one (an htmx partial) is left as it is.  It opens an
``EventSource`` on :data:`EVENTS_PATH` of the page's own origin and

* ``reload``: reloads the page;
* ``css``: swaps each ``<link rel=stylesheet>`` whose URL path is the saved
  file's for a copy with a cache-busting query, removing the old one once the
  new one has loaded (no reload: what the page holds, a form's text, stays);
* ``error``: shows an overlay with the file, the line and the error;
* ``ok``: removes the overlay (the file was saved back as it runs).

Only loopback clients get the script, and only they may open the stream:
the development server may listen on every interface, and a phone on the
same network has no business watching the developer's edits.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["EVENTS_PATH", "SCRIPT", "inject", "is_html", "is_loopback"]

#: The reserved path of the event stream (on every app, in this mode only).
EVENTS_PATH = "/__hmr__/events"

# Plain ES5, no dependency; its one global is the EventSource (a guard against a second).
SCRIPT = """<script data-muckrack-hmr>(function () {
  if (window.__muckrackHmr || !window.EventSource) return;
  var source = new EventSource("EVENTS_PATH");
  window.__muckrackHmr = source;
  var overlay = null;
  function data(e) { try { return JSON.parse(e.data); } catch (x) { return {}; } }
  function clear() { if (overlay) { overlay.remove(); overlay = null; } }
  source.addEventListener("reload", function () { source.close(); location.reload(); });
  source.addEventListener("ok", clear);
  source.addEventListener("css", function (e) {
    var path = data(e).path, links = document.querySelectorAll('link[rel~="stylesheet"]');
    Array.prototype.forEach.call(links, function (link) {
      var url = new URL(link.href, location.href);
      if (url.origin !== location.origin || url.pathname !== path) return;
      url.searchParams.set("hmr", Date.now());
      var fresh = link.cloneNode();
      fresh.href = url.href;
      fresh.onload = fresh.onerror = function () { link.remove(); };
      link.after(fresh);
    });
  });
  source.addEventListener("error", function (e) {
    if (e.data === undefined) return; // the connection's own error: it retries by itself
    var d = data(e);
    clear();
    overlay = document.createElement("div");
    overlay.id = "muckrack-hmr-overlay";
    overlay.setAttribute("role", "alert");
    overlay.style.cssText = "position:fixed;inset:0;z-index:2147483647;background:rgba(20,0,0,.85);"
      + "color:#fff;font:14px/1.5 monospace;padding:2em;white-space:pre-wrap;overflow:auto";
    var where = d.file ? d.file + (d.line ? ":" + d.line : "") : (d.module || "");
    overlay.textContent = "hmr: reload failed, the old code keeps running\\n\\n"
      + where + "\\n" + (d.message || "") + "\\n\\nSave a fix: this goes away.";
    document.documentElement.appendChild(overlay);
  });
})();</script>""".replace("EVENTS_PATH", EVENTS_PATH).encode()

_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)
# Encodings in which "</body>" is not the ASCII bytes.
_WIDE = ("utf-16", "utf-32", "utf16", "utf32")


def is_html(content_type: str | None) -> bool:
    """A ``text/html`` response whose bytes hold ASCII as ASCII?"""
    if not content_type:
        return False
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "text/html":
        return False
    return not any(wide in params.lower() for wide in _WIDE)


def inject(body: bytes) -> bytes | None:
    """``body`` with the script before its last ``</body>``; None if it has none."""
    ends = list(_BODY_END.finditer(body))
    if not ends:
        return None
    at = ends[-1].start()
    return body[:at] + SCRIPT + body[at:]


def is_loopback(host: object) -> bool:
    """Is ``host`` (a client's address, as a server gives it) a loopback address?"""
    if not isinstance(host, str):
        return False
    address = host.strip("[]").split("%", 1)[0]  # "[::1]", "fe80::1%eth0"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback  # "::ffff:127.0.0.1" on a dual-stack socket
    return ip.is_loopback
