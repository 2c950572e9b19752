/* charts: small bar and line charts drawn on the server as inline SVG.
 *
 * No script and no style attribute: the colours come from classes in the
 * stylesheet, so the charts live within the Content-Security-Policy. Every
 * chart is an image with a name (role="img", aria-label) and every bar or
 * point has a <title> with its label and value, which browsers show on hover
 * and screen readers read. The value axis starts at 0 and ends at the next
 * 1, 2 or 5 times a power of ten above the largest value. */
#include "web/internal.h"

#include <math.h>

#define W 640.0
#define H 190.0
#define LEFT 40.0
#define BOTTOM 22.0
#define TOP 8.0

double chart_axis_max(double max)
{
	if (!(max > 0))
		return 1;
	double p = pow(10, floor(log10(max)));
	static const double steps[] = {1, 2, 5, 10};
	for (size_t i = 0; i < G_N_ELEMENTS(steps); i++)
		if (max <= steps[i] * p)
			return steps[i] * p;
	return 10 * p;
}

static void begin(GString *b, const char *title, double top)
{
	g_string_append_printf(b, "<svg viewBox=\"0 0 %.0f %.0f\" role=\"img\" aria-label=\"", W, H);
	html_escape(b, title);
	g_string_append(b, "\"><title>");
	html_escape(b, title);
	g_string_append_printf(b,
	                       "</title><line class=\"axis\" x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\"/>"
	                       "<line class=\"axis\" x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\"/>",
	                       LEFT, TOP, LEFT, H - BOTTOM, LEFT, H - BOTTOM, W, H - BOTTOM);
	g_string_append_printf(b,
	                       "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%g</text>"
	                       "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">0</text>",
	                       LEFT - 4, TOP + 9, top, LEFT - 4, H - BOTTOM);
}

static void x_labels(GString *b, int n, const char *const *labels, int every)
{
	double slot = (W - LEFT) / n;
	for (int i = 0; labels && every > 0 && i < n; i += every) {
		g_string_append_printf(b, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">",
		                       LEFT + slot * (i + 0.5), H - 6);
		html_escape(b, labels[i]);
		g_string_append(b, "</text>");
	}
}

void chart_bars(GString *b, const char *title, const struct chart_series *s, int ns, int n, const char *const *labels,
                int label_every)
{
	double max = 0;
	for (int i = 0; i < n; i++) {
		double sum = 0;
		for (int k = 0; k < ns; k++)
			sum += s[k].v[i] > 0 ? s[k].v[i] : 0;
		max = MAX(max, sum);
	}
	double top = chart_axis_max(max), slot = (W - LEFT) / (n > 0 ? n : 1), h = H - BOTTOM - TOP;
	begin(b, title, top);
	for (int i = 0; i < n; i++) {
		double base = H - BOTTOM;
		for (int k = 0; k < ns; k++) {
			double v = s[k].v[i] > 0 ? s[k].v[i] : 0, bh = v / top * h;
			if (bh <= 0)
				continue;
			base -= bh;
			g_string_append_printf(
			    b, "<rect class=\"%s\" x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"><title>",
			    s[k].cls, LEFT + slot * i + slot * 0.1, base, slot * 0.8, bh);
			if (labels)
				html_escape(b, labels[i]);
			g_string_append(b, ": ");
			html_escape(b, s[k].name);
			g_string_append_printf(b, " %g</title></rect>", v);
		}
	}
	x_labels(b, n, labels, label_every);
	g_string_append(b, "</svg>");
}

void chart_line(GString *b, const char *title, const char *name, const double *v, int n, const char *const *labels,
                int label_every)
{
	double max = 0;
	for (int i = 0; i < n; i++)
		max = MAX(max, v[i]);
	double top = chart_axis_max(max), slot = (W - LEFT) / (n > 0 ? n : 1), h = H - BOTTOM - TOP;
	begin(b, title, top);
	g_string_append(b, "<polyline class=\"line-q\" points=\"");
	for (int i = 0; i < n; i++)
		g_string_append_printf(b, "%s%.2f,%.2f", i ? " " : "", LEFT + slot * (i + 0.5),
		                       H - BOTTOM - (v[i] > 0 ? v[i] : 0) / top * h);
	g_string_append(b, "\"/>");
	for (int i = 0; i < n; i++) {
		g_string_append_printf(b, "<circle class=\"bar-a\" cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\"><title>",
		                       LEFT + slot * (i + 0.5), H - BOTTOM - (v[i] > 0 ? v[i] : 0) / top * h);
		if (labels)
			html_escape(b, labels[i]);
		g_string_append(b, ": ");
		html_escape(b, name);
		g_string_append_printf(b, " %g</title></circle>", v[i]);
	}
	x_labels(b, n, labels, label_every);
	g_string_append(b, "</svg>");
}
