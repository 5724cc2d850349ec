/*
 * _extra2.js: spare page page_extra2 for integrators. Put static content into
 * #page_extra2_content in onCreate, refresh dynamic content in onStart, save in onStop.
 * Open it with j$.mobile.changePage("#page_extra2", { transition: "none", role: "page" });
 */
(function (global) {
  'use strict';
  global.WPSkin.page('page_extra2', {
    onCreate: function () {},
    onStart: function () {},
    onStop: function () {}
  });
})(window);
