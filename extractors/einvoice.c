/* einvoice: CII and UBL through XPath, and the cross-check against the page. */
#include "extractors/einvoice.h"

#include <glib.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <math.h>
#include <string.h>

#include "core/json.h"
#include "extractors/evaluate.h"

static const char *const NS[][2] = {
	{"rsm", "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"},
	{"ram", "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"},
	{"udt", "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"},
	{"ubl", "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"},
	{"cac", "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"},
	{"cbc", "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"},
	/* ZUGFeRD 1.0: CII's predecessor, its own root and versions of ram and udt */
	{"zf", "urn:ferd:CrossIndustryDocument:invoice:1p0"},
	{"zram", "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:12"},
	{"zudt", "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:15"},
};

enum vkind { V_TEXT, V_DATE, V_AMOUNT };

struct path {
	const char *field;
	enum vkind kind;
	const char *xpath; /* relative to the root (or to a line for line paths) */
};

static const struct path CII[] = {
	{"invoice_number", V_TEXT, "rsm:ExchangedDocument/ram:ID"},
	{"issue_date", V_DATE, "rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString"},
	{"supplier_name", V_TEXT, "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty/ram:Name"},
	{"supplier_vat_id", V_TEXT, "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:SellerTradeParty/"
	                            "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']"},
	{"buyer_name", V_TEXT, "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/ram:BuyerTradeParty/ram:Name"},
	{"currency", V_TEXT, "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:InvoiceCurrencyCode"},
	{"iban", V_TEXT, "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
	                 "ram:SpecifiedTradeSettlementPaymentMeans/ram:PayeePartyCreditorFinancialAccount/ram:IBANID"},
	{"due_date", V_DATE, "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
	                     "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString"},
	{"net_amount", V_AMOUNT, "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
	                         "ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TaxBasisTotalAmount"},
	{"tax_amount", V_AMOUNT, "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
	                         "ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TaxTotalAmount"},
	{"total_amount", V_AMOUNT, "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
	                           "ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount"},
};

#define ZF_AGREEMENT "zf:SpecifiedSupplyChainTradeTransaction/zram:ApplicableSupplyChainTradeAgreement/"
#define ZF_SETTLEMENT "zf:SpecifiedSupplyChainTradeTransaction/zram:ApplicableSupplyChainTradeSettlement/"
#define ZF_SUM ZF_SETTLEMENT "zram:SpecifiedTradeSettlementMonetarySummation/"

static const struct path ZF1[] = {
	{"invoice_number", V_TEXT, "zf:HeaderExchangedDocument/zram:ID"},
	{"issue_date", V_DATE, "zf:HeaderExchangedDocument/zram:IssueDateTime/zudt:DateTimeString"},
	{"supplier_name", V_TEXT, ZF_AGREEMENT "zram:SellerTradeParty/zram:Name"},
	{"supplier_vat_id", V_TEXT, ZF_AGREEMENT "zram:SellerTradeParty/zram:SpecifiedTaxRegistration/zram:ID[@schemeID='VA']"},
	{"buyer_name", V_TEXT, ZF_AGREEMENT "zram:BuyerTradeParty/zram:Name"},
	{"currency", V_TEXT, ZF_SETTLEMENT "zram:InvoiceCurrencyCode"},
	{"iban", V_TEXT, ZF_SETTLEMENT "zram:SpecifiedTradeSettlementPaymentMeans/zram:PayeePartyCreditorFinancialAccount/"
	                 "zram:IBANID"},
	{"due_date", V_DATE, ZF_SETTLEMENT "zram:SpecifiedTradePaymentTerms/zram:DueDateDateTime/zudt:DateTimeString"},
	{"net_amount", V_AMOUNT, ZF_SUM "zram:TaxBasisTotalAmount"},
	{"tax_amount", V_AMOUNT, ZF_SUM "zram:TaxTotalAmount"},
	{"total_amount", V_AMOUNT, ZF_SUM "zram:GrandTotalAmount"},
};

static const struct path UBL[] = {
	{"invoice_number", V_TEXT, "cbc:ID"},
	{"issue_date", V_DATE, "cbc:IssueDate"},
	{"supplier_name", V_TEXT, "cac:AccountingSupplierParty/cac:Party/cac:PartyName/cbc:Name|"
	                          "cac:AccountingSupplierParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName"},
	{"supplier_vat_id", V_TEXT, "cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID"},
	{"buyer_name", V_TEXT, "cac:AccountingCustomerParty/cac:Party/cac:PartyName/cbc:Name|"
	                       "cac:AccountingCustomerParty/cac:Party/cac:PartyLegalEntity/cbc:RegistrationName"},
	{"currency", V_TEXT, "cbc:DocumentCurrencyCode"},
	{"iban", V_TEXT, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID"},
	{"due_date", V_DATE, "cbc:DueDate"},
	{"net_amount", V_AMOUNT, "cac:LegalMonetaryTotal/cbc:TaxExclusiveAmount"},
	{"tax_amount", V_AMOUNT, "cac:TaxTotal/cbc:TaxAmount"},
	{"total_amount", V_AMOUNT, "cac:LegalMonetaryTotal/cbc:TaxInclusiveAmount"},
};

struct syntax {
	const char *name;
	const char *root_ns, *root;
	const struct path *paths;
	size_t n_paths;
	const char *lines, *tax_lines;
	struct path line[4]; /* description, quantity, unit_price, amount */
	struct path tax[2];  /* rate, tax */
};

static const struct syntax SYNTAXES[] = {
	{"cii", "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100", "CrossIndustryInvoice", CII,
	 G_N_ELEMENTS(CII), "rsm:SupplyChainTradeTransaction/ram:IncludedSupplyChainTradeLineItem",
	 "rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax",
	 {{"description", V_TEXT, "ram:SpecifiedTradeProduct/ram:Name"},
	  {"quantity", V_AMOUNT, "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity"},
	  {"unit_price", V_AMOUNT, "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount"},
	  {"amount", V_AMOUNT, "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/"
	                       "ram:LineTotalAmount"}},
	 {{"rate", V_AMOUNT, "ram:RateApplicablePercent"}, {"tax", V_AMOUNT, "ram:CalculatedAmount"}}},
	{"zugferd1", "urn:ferd:CrossIndustryDocument:invoice:1p0", "CrossIndustryDocument", ZF1, G_N_ELEMENTS(ZF1),
	 "zf:SpecifiedSupplyChainTradeTransaction/zram:IncludedSupplyChainTradeLineItem", ZF_SETTLEMENT "zram:ApplicableTradeTax",
	 {{"description", V_TEXT, "zram:SpecifiedTradeProduct/zram:Name"},
	  {"quantity", V_AMOUNT, "zram:SpecifiedSupplyChainTradeDelivery/zram:BilledQuantity"},
	  {"unit_price", V_AMOUNT, "zram:SpecifiedSupplyChainTradeAgreement/zram:NetPriceProductTradePrice/zram:ChargeAmount"},
	  {"amount", V_AMOUNT, "zram:SpecifiedSupplyChainTradeSettlement/zram:SpecifiedTradeSettlementMonetarySummation/"
	                       "zram:LineTotalAmount"}},
	 {{"rate", V_AMOUNT, "zram:ApplicablePercent"}, {"tax", V_AMOUNT, "zram:CalculatedAmount"}}},
	{"ubl", "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2", "Invoice", UBL, G_N_ELEMENTS(UBL),
	 "cac:InvoiceLine", "cac:TaxTotal/cac:TaxSubtotal",
	 {{"description", V_TEXT, "cac:Item/cbc:Name"},
	  {"quantity", V_AMOUNT, "cbc:InvoicedQuantity"},
	  {"unit_price", V_AMOUNT, "cac:Price/cbc:PriceAmount"},
	  {"amount", V_AMOUNT, "cbc:LineExtensionAmount"}},
	 {{"rate", V_AMOUNT, "cac:TaxCategory/cbc:Percent"}, {"tax", V_AMOUNT, "cbc:TaxAmount"}}},
};

/* The trimmed text of the first node xpath selects under node, or NULL (g_free). */
static char *text_at(xmlXPathContextPtr ctx, xmlNodePtr node, const char *xpath)
{
	ctx->node = node;
	xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)xpath, ctx);
	char *r = NULL;
	if (o && o->nodesetval && o->nodesetval->nodeNr > 0) {
		xmlChar *c = xmlNodeGetContent(o->nodesetval->nodeTab[0]);
		if (c) {
			r = g_strstrip(g_strdup((const char *)c));
			xmlFree(c);
		}
	}
	xmlXPathFreeObject(o);
	return r;
}

/* A value of kind from XML text: CII dates are YYYYMMDD (format 102), UBL ones ISO. */
static struct json *value_of(enum vkind kind, const char *t)
{
	if (!t || !t[0] || !g_utf8_validate(t, -1, NULL))
		return NULL;
	if (kind == V_AMOUNT) {
		char *end = NULL;
		double v = g_ascii_strtod(t, &end);
		return end && *end == '\0' && isfinite(v) ? json_number(round(v * 100) / 100) : NULL;
	}
	if (kind == V_DATE) {
		char iso[11];
		if (strlen(t) == 8 && strspn(t, "0123456789") == 8)
			g_snprintf(iso, sizeof iso, "%.4s-%.2s-%.2s", t, t + 4, t + 6);
		else if (strlen(t) >= 10 && t[4] == '-' && t[7] == '-')
			g_snprintf(iso, sizeof iso, "%.10s", t);
		else
			return NULL;
		return json_string(iso);
	}
	return strlen(t) <= 200 ? json_string(t) : NULL;
}

static void add_value(struct json *obj, const char *key, enum vkind kind, char *text)
{
	struct json *v = value_of(kind, text);
	if (v)
		json_add_item(obj, key, v);
	else
		json_add_null(obj, key);
	g_free(text);
}

/* Objects of paths (n of them) for every node xpath selects under root. */
static struct json *list_of(xmlXPathContextPtr ctx, xmlNodePtr root, const char *xpath, const struct path *paths,
                            size_t n)
{
	struct json *list = json_new_array();
	ctx->node = root;
	xmlXPathObjectPtr o = xmlXPathEvalExpression((const xmlChar *)xpath, ctx);
	int count = o && o->nodesetval ? MIN(o->nodesetval->nodeNr, EINVOICE_MAX_LINES) : 0;
	for (int i = 0; i < count; i++) {
		struct json *it = json_new_object();
		bool any = false;
		for (size_t k = 0; k < n; k++) {
			add_value(it, paths[k].field, paths[k].kind, text_at(ctx, o->nodesetval->nodeTab[i], paths[k].xpath));
			any |= !json_is_null(json_get(it, paths[k].field));
		}
		/* a line that is only a note (ZUGFeRD 1.0 writes such) is no item */
		if (any)
			json_append(list, it);
		else
			json_free(it);
	}
	xmlXPathFreeObject(o);
	return list;
}

static const struct syntax *syntax_of(xmlNodePtr root)
{
	for (size_t i = 0; root && i < G_N_ELEMENTS(SYNTAXES); i++)
		if (root->ns && root->ns->href && strcmp((const char *)root->ns->href, SYNTAXES[i].root_ns) == 0 &&
		    strcmp((const char *)root->name, SYNTAXES[i].root) == 0)
			return &SYNTAXES[i];
	return NULL;
}

enum qerr einvoice_parse(const char *xml, size_t len, struct json **ret, const char **ret_syntax, char **reterr)
{
	if (len > EINVOICE_MAX_XML)
		return qerr_set(reterr, QERR_TOO_LARGE, "embedded invoice XML larger than %u bytes", EINVOICE_MAX_XML);
	/* No network, no DTD loading, no entity substitution: XXE and billion laughs stay inert. */
	xmlDocPtr doc = xmlReadMemory(xml, (int)len, "einvoice.xml", NULL,
	                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return qerr_set(reterr, QERR_PARSE_FAILED, "embedded invoice XML does not parse");
	xmlNodePtr root = xmlDocGetRootElement(doc);
	const struct syntax *sx = syntax_of(root);
	if (!sx) {
		xmlFreeDoc(doc);
		return qerr_set(reterr, QERR_UNSUPPORTED, "embedded XML is not a CII, ZUGFeRD 1.0 or UBL invoice");
	}
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	for (size_t i = 0; i < G_N_ELEMENTS(NS); i++)
		xmlXPathRegisterNs(ctx, (const xmlChar *)NS[i][0], (const xmlChar *)NS[i][1]);
	struct json *v = json_new_object();
	for (size_t i = 0; i < sx->n_paths; i++)
		add_value(v, sx->paths[i].field, sx->paths[i].kind, text_at(ctx, root, sx->paths[i].xpath));
	json_add_item(v, "line_items", list_of(ctx, root, sx->lines, sx->line, 4));
	json_add_item(v, "tax_lines", list_of(ctx, root, sx->tax_lines, sx->tax, 2));
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	*ret = v;
	*ret_syntax = sx->name;
	return QERR_OK;
}

struct json *einvoice_crosscheck(const struct json *einvoice, const struct json *page)
{
	static const char *const fields[] = {"invoice_number", "issue_date", "due_date", "currency",
	                                     "net_amount",     "tax_amount", "total_amount"};
	struct json *check = json_new_object();
	json_add_string(check, "check", "einvoice_matches_page");
	struct json *bad = json_new_array();
	GString *reason = g_string_new(NULL);
	int compared = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(fields); i++) {
		const struct json *a = json_get(einvoice, fields[i]), *b = json_get(page, fields[i]);
		if (!a || !b || json_is_null(a) || json_is_null(b))
			continue;
		compared++;
		if (eval_same(a, b))
			continue;
		json_append(bad, json_string(fields[i]));
		g_string_append_printf(reason, "%s%s differs between the embedded invoice and the page", reason->len ? "; " : "",
		                       fields[i]);
	}
	json_add_bool(check, "ok", json_array_size(bad) == 0);
	json_add_item(check, "fields", bad);
	if (!reason->len)
		g_string_printf(reason, "%d fields agree with the page", compared);
	json_add_string(check, "reason", reason->str);
	g_string_free(reason, TRUE);
	return check;
}
