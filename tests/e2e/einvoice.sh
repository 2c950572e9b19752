#!/usr/bin/env bash
# End-to-end: a Factur-X PDF (page drawn by make-invoice, CII XML embedded by
# tests/fixtures/pdfattach.c) through `quire extract` and through the pipeline
# (submit, worker, show). The fields come from the XML ("method": "einvoice");
# a PDF whose page disagrees with its XML goes to review.
# Prints TAP. Usage: einvoice.sh QUIRE MAKE_INVOICE
set -u
QUIRE=$1
MAKE_INVOICE=$2
. "$(dirname "$0")/tap.sh"

work=$(mktemp -d /tmp/quire-e2e-XXXXXX)
chmod 711 "$work"
export QUIRE_GENERAL_DATA_DIR="$work/data"
unset QUIRE_CONFIG QUIRE_DATABASE_URL
log="$work/quire.log"
cleanup() { "$QUIRE" stop >/dev/null 2>&1; rm -rf "$work"; }
trap cleanup EXIT

# The CII of make-invoice's page, with the given number and grand total; the
# buyer's name is only in the XML's spelling (the page says "Contoso Legal LLP").
cii() {
  cat <<XML
<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
 xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
 <rsm:ExchangedDocument><ram:ID>$1</ram:ID>
  <ram:IssueDateTime><udt:DateTimeString format="102">20260314</udt:DateTimeString></ram:IssueDateTime>
 </rsm:ExchangedDocument>
 <rsm:SupplyChainTradeTransaction>
  <ram:ApplicableHeaderTradeAgreement>
   <ram:SellerTradeParty><ram:Name>Northwind Supplies GmbH</ram:Name>
    <ram:SpecifiedTaxRegistration><ram:ID schemeID="VA">DE811234567</ram:ID></ram:SpecifiedTaxRegistration>
   </ram:SellerTradeParty>
   <ram:BuyerTradeParty><ram:Name>Contoso Legal LLP (XML)</ram:Name></ram:BuyerTradeParty>
  </ram:ApplicableHeaderTradeAgreement>
  <ram:ApplicableHeaderTradeSettlement>
   <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
   <ram:ApplicableTradeTax><ram:CalculatedAmount>197.11</ram:CalculatedAmount>
    <ram:RateApplicablePercent>19</ram:RateApplicablePercent></ram:ApplicableTradeTax>
   <ram:SpecifiedTradePaymentTerms><ram:DueDateDateTime>
    <udt:DateTimeString format="102">20260413</udt:DateTimeString></ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>
   <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    <ram:TaxBasisTotalAmount>1037.40</ram:TaxBasisTotalAmount>
    <ram:TaxTotalAmount currencyID="EUR">197.11</ram:TaxTotalAmount>
    <ram:GrandTotalAmount>$2</ram:GrandTotalAmount>
   </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
  </ram:ApplicableHeaderTradeSettlement>
 </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
XML
}

# flat JSON, so greps see "key":value
flat() { tr -d '\n\t '; }

echo "1..8"
cii FX-E2E-1 1234.51 >"$work/agree.xml"
cii FX-E2E-2 1324.51 >"$work/differ.xml"
"$MAKE_INVOICE" "$work/agree.pdf" --number FX-E2E-1 --einvoice "$work/agree.xml"
"$MAKE_INVOICE" "$work/differ.pdf" --number FX-E2E-2 --einvoice "$work/differ.xml" --einvoice-name zugferd-invoice.xml

"$QUIRE" extract "$work/agree.pdf" 2>>"$log" | flat >"$work/agree.json"
check "/e2e/einvoice/extract-from-xml" 'grep -q "\"classification\":{\"method\":\"einvoice\",\"syntax\":\"cii\"" "$work/agree.json" &&
  grep -q "\"file\":\"factur-x.xml\"" "$work/agree.json" && grep -q "\"method\":\"einvoice\",\"fields\"" "$work/agree.json" &&
  grep -q "\"buyer_name\":{\"value\":\"ContosoLegalLLP(XML)\"" "$work/agree.json" &&
  grep -q "\"total_amount\":{\"value\":1234.51,\"agrees\":true" "$work/agree.json"'
check "/e2e/einvoice/extract-agreeing-approved" 'grep -q "\"check\":\"einvoice_matches_page\",\"ok\":true" "$work/agree.json" &&
  grep -q "\"status\":\"approved\"" "$work/agree.json"'
"$QUIRE" extract "$work/differ.pdf" 2>>"$log" | flat >"$work/differ.json"
check "/e2e/einvoice/extract-disagreement-flagged" 'grep -q "\"file\":\"zugferd-invoice.xml\"" "$work/differ.json" &&
  grep -q "\"total_amount\":{\"value\":1324.51,\"agrees\":false" "$work/differ.json" &&
  grep -q "\"check\":\"einvoice_matches_page\",\"ok\":false,\"fields\":\[\"total_amount\"\]" "$work/differ.json" &&
  grep -q "\"status\":\"review\"" "$work/differ.json"'
"$QUIRE" extract --json "$work/agree.pdf" 2>>"$log" | flat >"$work/full.json"
check "/e2e/einvoice/extract-lists-attachment" 'grep -q "\"attachments\":\[{\"name\":\"factur-x.xml\",\"bytes\":[0-9]*}\]" "$work/full.json"'

check "/e2e/einvoice/init" '"$QUIRE" init >>"$log" 2>&1'
a=$("$QUIRE" submit "$work/agree.pdf" 2>>"$log" | sed -n 's/.*document \([0-9]*\),.*/\1/p')
d=$("$QUIRE" submit "$work/differ.pdf" 2>>"$log" | sed -n 's/.*document \([0-9]*\),.*/\1/p')
check "/e2e/einvoice/pipeline" '[ -n "$a" ] && [ -n "$d" ] && "$QUIRE" worker --drain >>"$log" 2>&1'
"$QUIRE" show "$a" 2>>"$log" | flat >"$work/show-a.txt"
"$QUIRE" show "$d" 2>>"$log" | flat >"$work/show-d.txt"
check "/e2e/einvoice/pipeline-from-xml" 'grep -q "\"method\":\"einvoice\",\"fields\"" "$work/show-a.txt" &&
  grep -q "\"invoice_number\":{\"value\":\"FX-E2E-1\"" "$work/show-a.txt" && grep -q "\"status\":\"approved\"" "$work/show-a.txt"'
check "/e2e/einvoice/pipeline-disagreement-to-review" 'grep -q "\"method\":\"einvoice\",\"fields\"" "$work/show-d.txt" &&
  grep -q "\"status\":\"review\"" "$work/show-d.txt" &&
  grep -q "total_amountdiffersbetweentheembeddedinvoiceandthepage" "$work/show-d.txt"'
[ "$failed" -eq 0 ]
