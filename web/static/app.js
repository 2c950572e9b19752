'use strict';
// Quire's one script. Every page works without it; on the review screen it adds:
// a field's box lit on the page image when the field is focused, a word clicked
// on the page put into the field being edited, rows added to and removed from
// the line item and tax tables, the sums checked as values are typed, and
// keyboard shortcuts (shown on the page).

function lightBox(id) {
  document.querySelectorAll('.box.lit').forEach(function (b) { b.classList.remove('lit'); });
  var box = id && document.getElementById(id);
  if (!box) return;
  box.classList.add('lit');
  box.scrollIntoView({block: 'center', behavior: 'smooth'});
}

// Clicking a field's source link lights its box without jumping the page.
document.addEventListener('click', function (ev) {
  var a = ev.target.closest && ev.target.closest('a.src');
  if (!a) return;
  ev.preventDefault();
  lightBox(a.getAttribute('href').slice(1));
});

// Confirmation for destructive buttons.
document.addEventListener('submit', function (ev) {
  var q = ev.target.getAttribute('data-confirm');
  if (q && !window.confirm(q)) ev.preventDefault();
});

(function review() {
  var form = document.querySelector('form.review-fields');
  if (!form) return;
  var current = null; // the field being edited: the last one focused

  function inputs() {
    return Array.prototype.filter.call(form.querySelectorAll('input.field, table.rows input:not([type=checkbox])'),
      function (i) { return i.offsetParent !== null; });
  }

  form.addEventListener('focusin', function (ev) {
    var t = ev.target;
    if (t.tagName !== 'INPUT' || t.type === 'checkbox' || t.type === 'hidden') return;
    current = t;
    var row = t.closest('tr[data-field]');
    var src = t.getAttribute('data-src') || (row && row.querySelector('a.src') &&
      row.querySelector('a.src').getAttribute('href').slice(1));
    if (src) lightBox(src);
  });

  // A word on the page image goes into the field being edited (Shift: added to it).
  document.addEventListener('click', function (ev) {
    var w = ev.target.closest && ev.target.closest('rect.word');
    if (!w || !current) return;
    var text = w.getAttribute('data-w');
    current.value = ev.shiftKey && current.value ? current.value + ' ' + text : text;
    current.dispatchEvent(new Event('input', {bubbles: true}));
    current.focus();
  });

  // Tables: add a row (a copy of the spare row, renumbered), remove one.
  form.addEventListener('click', function (ev) {
    var add = ev.target.closest('button.add-row');
    if (!add) return;
    var key = add.getAttribute('data-table');
    var count = form.querySelector('input[type=hidden][name="table.' + key + '"]');
    var body = form.querySelector('table[data-table="' + key + '"] tbody');
    var last = body.lastElementChild, n = parseInt(count.value, 10);
    var row = last.cloneNode(true);
    row.querySelectorAll('input').forEach(function (i) {
      i.name = i.name.replace(/^(table\.[^.]+\.)\d+\./, '$1' + n + '.');
      if (i.type === 'checkbox') i.checked = false; else i.value = '';
      var label = i.getAttribute('aria-label');
      if (label) i.setAttribute('aria-label', label.replace(/row \d+$/, 'row ' + (n + 1)));
    });
    row.hidden = false;
    body.appendChild(row);
    count.value = n + 1;
    row.querySelector('input').focus();
  });
  form.addEventListener('change', function (ev) {
    var t = ev.target;
    if (t.type !== 'checkbox' || !/\._remove$/.test(t.name)) return;
    t.closest('tr').classList.toggle('removed', t.checked);
    check();
  });

  function num(text) {
    if (text === undefined || text === null) return null;
    text = String(text).trim().replace(/\s/g, '');
    if (!text) return null;
    if (/,\d{1,2}$/.test(text)) text = text.replace(/\./g, '').replace(',', '.');
    else text = text.replace(/,/g, '');
    var v = Number(text);
    return isFinite(v) ? v : null;
  }
  function field(name) {
    var i = form.querySelector('input[name="field.' + name + '"]');
    return i ? num(i.value) : null;
  }
  function rows(key) {
    var out = [];
    form.querySelectorAll('table[data-table="' + key + '"] tbody tr').forEach(function (tr) {
      if (tr.classList.contains('removed')) return;
      var r = {}, any = false;
      tr.querySelectorAll('input[data-col]').forEach(function (i) {
        r[i.getAttribute('data-col')] = i.value;
        if (i.value.trim()) any = true;
      });
      if (any) out.push(r);
    });
    return out;
  }
  function sum(list, col) {
    var s = 0;
    for (var i = 0; i < list.length; i++) {
      var v = num(list[i][col]);
      if (v === null) return null;
      s += v;
    }
    return list.length ? s : null;
  }
  function show(name, failed, text) {
    form.querySelectorAll('.check[data-check="' + name + '"]').forEach(function (p) {
      p.hidden = !failed;
      p.textContent = failed ? text : '';
    });
  }
  var f2 = function (v) { return v.toFixed(2); };
  // The same checks and tolerances as the server's (extractors/validate.c).
  function check() {
    var net = field('net_amount'), tax = field('tax_amount'), total = field('total_amount');
    if (net !== null && tax !== null && total !== null)
      show('totals', Math.abs(net + tax - total) >= 0.011,
        'net ' + f2(net) + ' + tax ' + f2(tax) + ' = ' + f2(net + tax) + ', total ' + f2(total));
    else show('totals', false);
    var items = rows('line_items'), s = sum(items, 'amount');
    if (s !== null && net !== null)
      show('line_items_sum', Math.abs(s - net) >= 0.011 + 0.005 * items.length,
        items.length + ' line items sum to ' + f2(s) + ', net amount ' + f2(net));
    else show('line_items_sum', false);
    var taxes = rows('tax_lines'), t = sum(taxes, 'tax');
    if (t !== null && tax !== null)
      show('tax_lines_sum', Math.abs(t - tax) >= 0.011 + 0.005 * taxes.length,
        'tax lines sum to ' + f2(t) + ', tax amount ' + f2(tax));
    else show('tax_lines_sum', false);
    var bad = 0, checked = 0, first = 0;
    items.forEach(function (r, i) {
      var q = num(r.quantity), p = num(r.unit_price), a = num(r.amount);
      if (q === null || p === null || a === null) return;
      checked++;
      if (Math.abs(q * p - a) > 0.011 + 0.001 * Math.abs(a) && !bad++) first = i + 1;
    });
    show('line_item_arithmetic', bad > 0, bad + ' of ' + checked +
      ' lines: quantity x unit price is not the amount (line ' + first + ' first)');
  }
  form.addEventListener('input', check);

  function press(value) {
    var b = form.querySelector('button[name=do][value=' + value + ']');
    if (b) b.click();
  }
  function move(by) {
    var list = inputs(), i = list.indexOf(document.activeElement);
    var next = list[Math.max(0, Math.min(list.length - 1, i + by))];
    if (next) { next.focus(); next.select(); }
  }
  document.addEventListener('keydown', function (ev) {
    if (ev.altKey && !ev.ctrlKey && !ev.metaKey) {
      var k = ev.key.toLowerCase();
      var act = {a: 'accept', r: 'reject', n: 'next', s: 'save'}[k];
      if (act) { ev.preventDefault(); press(act); return; }
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') { ev.preventDefault(); move(ev.key === 'ArrowDown' ? 1 : -1); }
      return;
    }
    var t = ev.target;
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.ctrlKey && !ev.metaKey && t.tagName === 'INPUT' &&
        t.type !== 'checkbox' && form.contains(t)) {
      ev.preventDefault(); // Enter moves on; saving is a button or Alt+S
      move(1);
    }
  });
  var first = inputs()[0];
  if (first && !document.querySelector('.msg.error')) first.focus();
})();
