/*
 * wprouter.js: a small single-page router for the softphone skin.
 *
 * jQuery is exposed as `j$` (jQuery.noConflict(true) keeps `$` and `jQuery` free for the host page).
 * The skin used to run on jQuery Mobile; this file keeps the two navigation calls customisations
 * rely on, without jQuery Mobile:
 *
 *   j$.mobile.changePage("#page_extra1", { transition: "none", role: "page" });
 *   j$.mobile.back();
 *
 * Pages are elements with data-role="page". Exactly one is shown at a time (the others carry the
 * `hidden` attribute). Page scripts register with WPRouter.register(id, {onCreate, onStart,
 * onStop}): onCreate runs once, before the first display; onStart at every display; onStop when
 * the page is left. The page element also receives the jQuery events `pagebeforeshow`,
 * `pageshow` and `pagehide`.
 */
(function (global) {
  'use strict';

  var jq = global.jQuery.noConflict(true);
  global.j$ = jq;

  var handlers = {};   // page id -> {onCreate, onStart, onStop}
  var created = {};    // page id -> true once onCreate ran
  var stack = [];      // visited page ids, current last
  var listeners = [];  // router-level change listeners: fn(newId, oldId)
  var current = null;

  function pageId(target) {
    if (!target) { return null; }
    if (typeof target === 'string') { return target.replace(/^#/, ''); }
    if (target.jquery) { target = target[0]; }
    return target && target.id ? target.id : null;
  }

  function call(id, name) {
    var h = handlers[id];
    if (h && typeof h[name] === 'function') {
      try { h[name](); } catch (e) {
        if (global.console) { global.console.error('page ' + id + ' ' + name + ' failed:', e); }
      }
    }
  }

  function show(id, opts) {
    var el = global.document.getElementById(id);
    if (!el || el.getAttribute('data-role') !== 'page') {
      if (global.console) { global.console.warn('changePage: no page #' + id); }
      return false;
    }
    if (current === id) { return true; }
    var old = current;
    if (old) {
      call(old, 'onStop');
      var oldEl = global.document.getElementById(old);
      if (oldEl) {
        oldEl.hidden = true;
        oldEl.classList.remove('ui-page-active');
        jq(oldEl).trigger('pagehide');
      }
    }
    if (!created[id]) { created[id] = true; call(id, 'onCreate'); }
    jq(el).trigger('pagebeforeshow');
    el.hidden = false;
    el.classList.add('ui-page-active');
    current = id;
    jq.mobile.activePage = jq(el);
    call(id, 'onStart');
    jq(el).trigger('pageshow');
    listeners.forEach(function (fn) { try { fn(id, old); } catch (e) { /* listener bug */ } });
    if (!(opts && opts.noFocus)) {
      // Move focus to the page heading so screen readers announce the new page.
      var h = el.querySelector('h1');
      if (h) {
        h.setAttribute('tabindex', '-1');
        h.focus({ preventScroll: true });
      }
    }
    return true;
  }

  var mobile = {
    activePage: jq(),
    changePage: function (target, opts) {
      var id = pageId(target);
      if (!id) { return; }
      if (opts && opts.reverse && stack.length > 1 && stack[stack.length - 2] === id) {
        stack.pop();
      } else if (stack[stack.length - 1] !== id) {
        stack.push(id);
      }
      if (stack.length > 50) { stack.shift(); }
      show(id, opts);
    },
    back: function () {
      if (stack.length < 2) { return; }
      stack.pop();
      show(stack[stack.length - 1]);
    }
  };
  jq.mobile = mobile;

  global.WPRouter = {
    register: function (id, h) { handlers[id] = h || {}; },
    current: function () { return current; },
    onChange: function (fn) { listeners.push(fn); },
    // Replace the history (used when the start page is decided).
    reset: function (id, opts) { stack = []; mobile.changePage(id, opts); },
    // Remove a page from the back history (e.g. the call page after the call ended).
    // The current (last) entry stays, so j$.mobile.back() still leaves it.
    forget: function (id) {
      var top = stack.pop();
      stack = stack.filter(function (p) { return p !== id; });
      if (top !== undefined) { stack.push(top); }
    }
  };
})(window);
