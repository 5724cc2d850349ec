/*
 * _extra3.js: spare page page_extra3 for integrators. Put static content into
 * #page_extra3_content in onCreate, refresh dynamic content in onStart, save in onStop.
 * Open it with j$.mobile.changePage("#page_extra3", { transition: "none", role: "page" });
 */
(function (global) {
  'use strict';
  global.WPSkin.page('page_extra3', {
    onCreate: function () {},
    onStart: function () {},
    onStop: function () {}
  });
})(window);
