//! The parser's memory stays proportional to its (size-capped) input, whatever the input: a
//! counting global allocator measures the peak heap use while parsing hostile documents.
//!
//! One test function only: the allocator is global to this test binary, and tests running in
//! parallel threads would blur each other's peaks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use market::form4::{Limits, parse_document};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged to the system allocator.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak heap bytes allocated by `parse_document(input)` above what was live before it.
fn peak_while_parsing(input: &[u8]) -> usize {
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let result = parse_document(input);
    let peak = PEAK.load(Ordering::SeqCst) - before;
    drop(result);
    peak
}

fn near_limit(unit: &str, prefix: &str, suffix: &str) -> Vec<u8> {
    let budget = Limits::DEFAULT.max_input_bytes - prefix.len() - suffix.len();
    let mut doc = String::with_capacity(Limits::DEFAULT.max_input_bytes);
    doc.push_str(prefix);
    doc.push_str(&unit.repeat(budget / unit.len()));
    doc.push_str(suffix);
    doc.into_bytes()
}

#[test]
fn memory_is_bounded_by_the_input() {
    const HEAD: &str = "<ownershipDocument><documentType>4</documentType><issuer><issuerCik>1\
        </issuerCik><issuerName>I</issuerName></issuer><reportingOwner><reportingOwnerId>\
        <rptOwnerCik>2</rptOwnerCik><rptOwnerName>O</rptOwnerName></reportingOwnerId>\
        </reportingOwner>";
    const TAIL: &str = "</ownershipDocument>";
    let holding = "<nonDerivativeHolding><securityTitle><value>x</value></securityTitle>\
        <ownershipNature><directOrIndirectOwnership><value>D</value></directOrIndirectOwnership>\
        </ownershipNature></nonDerivativeHolding>";
    let refs_row = format!(
        "<nonDerivativeHolding><securityTitle><value>x</value></securityTitle>{}\
         <ownershipNature><directOrIndirectOwnership><value>D</value>\
         </directOrIndirectOwnership></ownershipNature></nonDerivativeHolding>",
        (0..256)
            .map(|i| format!("<footnoteId id=\"F{i}\"/>"))
            .collect::<String>()
    );
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("many holdings", near_limit(holding, HEAD, TAIL)),
        ("many footnote refs", near_limit(&refs_row, HEAD, TAIL)),
        (
            "many footnotes",
            near_limit(
                "<footnote id=\"F1\">some text</footnote>",
                &format!("{HEAD}<footnotes>"),
                &format!("</footnotes>{TAIL}"),
            ),
        ),
        (
            "long ignored text",
            near_limit(
                "lorem ipsum ",
                &format!("{HEAD}<unknown>"),
                &format!("</unknown>{TAIL}"),
            ),
        ),
        ("deep nesting", near_limit("<a>", HEAD, TAIL)),
        (
            "many references",
            near_limit("&amp;", &format!("{HEAD}<remarks>"), "</remarks>"),
        ),
        ("raw garbage", vec![b'<'; Limits::DEFAULT.max_input_bytes]),
        (
            "edgar envelope without xml",
            near_limit(
                "<DOCUMENT>\n<TEXT>\nx\n</TEXT>\n</DOCUMENT>\n",
                "<SEC-DOCUMENT>\n",
                "",
            ),
        ),
    ];
    for (name, input) in cases {
        assert!(input.len() <= Limits::DEFAULT.max_input_bytes, "{name}");
        let peak = peak_while_parsing(&input);
        let bound = 4 * input.len() + (1 << 20);
        println!("{name}: input {} bytes, peak {peak} bytes", input.len());
        assert!(peak <= bound, "{name}: peak {peak} > {bound}");
    }
}
