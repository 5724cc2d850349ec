/*
 * _contactedit.js: add / edit / delete one contact (page_contactedit). Opened through
 * WPSkin.openContactEditor(id, preset).
 */
(function (global) {
  'use strict';
  var j$ = global.j$;
  var S = global.WPSkin;
  var t = S.t;
  var editing = null;
  // The Block box as the page opened, and the number it was about.
  var shownBlocked = false;
  var shownNumber = '';

  function field(id) { return S.byId('contactedit_' + id); }

  function showError(text) {
    field('error').textContent = text || '';
    field('error').hidden = !text;
  }

  function close() {
    j$.mobile.back();
    if (global.WPRouter.current() === 'page_contactedit') { global.WPRouter.reset('page_contactslist'); }
  }

  S.page('page_contactedit', {
    onCreate: function () {
      field('form').addEventListener('submit', function (e) {
        e.preventDefault();
        var name = field('name').value.trim();
        var number = field('number').value.trim();
        if (!name || !number) { showError(t('sp.contact_incomplete')); return; }
        var c = editing || {};
        c.name = name;
        c.number = number;
        c.email = field('email').value.trim();
        c.notes = field('notes').value;
        c.favorite = field('favorite').checked;
        var blocked = field('blocked').checked;
        // Only what the user changed: the box ticked or cleared, or a blocked contact's number
        // edited (the block moves to the new number). A box left clear changes nothing, so a
        // number that is blacklisted on its own stays so.
        var change = null;
        if (blocked !== shownBlocked) {
          change = blocked ? [number, true, ''] : [number, false, shownNumber];
        } else if (blocked && number !== shownNumber) {
          change = [number, true, shownNumber];
        }
        if (change) {
          S.setBlocked(change[0], change[1], change[2]).then(null, function (err) {
            S.toast(S.errText(err), 'error');
          });
        }
        S.saveContact(c);
        S.toast(t('sp.contact_saved'));
        close();
      });
      field('cancel').addEventListener('click', close);
      field('delete').addEventListener('click', function () {
        if (!editing) { return; }
        var target = editing;
        S.confirm(t('sp.contact_delete_confirm', { name: target.name })).then(function (yes) {
          if (!yes) { return; }
          S.deleteContact(target.id);
          close();
        });
      });
    },
    onStart: function () {
      var req = S.editContact || {};
      editing = null;
      if (req.id) {
        S.contacts().forEach(function (c) { if (c.id === req.id) { editing = c; } });
      }
      var c = editing || req.preset || {};
      field('name').value = c.name || '';
      field('number').value = c.number || '';
      field('email').value = c.email || '';
      field('notes').value = c.notes || '';
      field('favorite').checked = !!c.favorite;
      shownNumber = c.number || '';
      shownBlocked = !!c.number && S.isBlocked(c.number);
      field('blocked').checked = shownBlocked;
      field('delete').hidden = !editing;
      S.byId('contactedit_title').textContent = editing ? t('sp.contact_edit') : t('sp.contact_add');
      showError('');
      setTimeout(function () { field('name').focus(); }, 0);
    },
    onStop: function () { S.editContact = null; }
  });
})(window);
