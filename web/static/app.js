'use strict';
// Clicking a field's source link lights its box on the page image without jumping the page.
document.addEventListener('click', function (ev) {
  var a = ev.target.closest && ev.target.closest('a.src');
  if (!a) return;
  var box = document.getElementById(a.getAttribute('href').slice(1));
  if (!box) return;
  ev.preventDefault();
  document.querySelectorAll('.box.lit').forEach(function (b) { b.classList.remove('lit'); });
  box.classList.add('lit');
  box.scrollIntoView({block: 'center', behavior: 'smooth'});
});
// Confirmation for destructive buttons.
document.addEventListener('submit', function (ev) {
  var q = ev.target.getAttribute('data-confirm');
  if (q && !window.confirm(q)) ev.preventDefault();
});
