//! **INSECURE SIMULATION**: a simulated AMD KDS and Intel PCS for the
//! INSECURE simulated TEEs, so that the demo and the tests go through the
//! collateral fetch path and the revocation checks instead of skipping
//! them.
//!
//! [`SimulatedVendor`] is a loopback HTTP server (127.0.0.1, a free port;
//! `accord_collateral::test_vendor`'s routing and response headers) that
//! plays the vendors for the simulated chips it is given (or whose state
//! directories it opens):
//!
//! | URL (KDS and PCS share the one base URL) | answer |
//! |---|---|
//! | `/vcek/v1/<product>/<hwID>?[fmcSPL=…&]blSPL=…&teeSPL=…&snpSPL=…&ucodeSPL=…` | the chip's VCEK for that TCB, issued on demand ([`SimulatedSnp::issue_vcek`]) |
//! | `/vcek/v1/<product>/cert_chain` | ASK then ARK, PEM |
//! | `/vcek/v1/<product>/crl` | the CRL signed by the chip's ARK ([`SimulatedSnp::issue_crl`]) |
//! | `/tdx/certification/v4/tcb?fmspc=…` | TCB info, `TCB-Info-Issuer-Chain` |
//! | `/tdx/certification/v4/qe/identity` | QE identity, `SGX-Enclave-Identity-Issuer-Chain` |
//! | `/sgx/certification/v4/pckcrl?ca=platform&encoding=der` | PCK CRL, `SGX-PCK-CRL-Issuer-Chain` |
//! | `/sgx/certification/v4/rootcacrl` | root CA CRL |
//!
//! One simulated SEV-SNP chip per product (the KDS serves one CRL per
//! product) and one simulated TDX platform (the PCS serves one QE identity
//! and one set of CRLs). The simulated chip has no VLEK, so no VLEK CRL is
//! served (404, as for anything else unknown).
//!
//! Controls for tests: [`SimulatedVendor::revoke_snp`] and
//! [`SimulatedVendor::revoke_pck`] re-issue the CRL with a higher number
//! (and a later thisUpdate); [`SimulatedVendor::serve_older_snp_crl`] and
//! [`SimulatedVendor::serve_older_tdx_collateral`] go back to the previous
//! issue (a rollback attempt); [`SimulatedVendor::set_behavior`] makes it
//! answer 5xx, garbage, tampered bytes, late or never; [`SimulatedVendor::stop`]
//! takes it down; [`SimulatedVendor::count`] counts the requests per path.
//!
//! Everything it serves is signed under the simulated roots, which no
//! verifier trusts unless told to explicitly (`--trust-root`,
//! `--tdx-trust-root`, `InsecureTrustedRoot` in reference values). It
//! proves nothing, says INSECURE SIMULATION when it starts, and is linked
//! only by the demo and the tests.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use accord_collateral::Endpoints;
use accord_collateral::test_vendor::{Vendor, VendorServer};
use accord_core::evidence::snp::{Product, TcbVersion};
use accord_core::hex;
use accord_core::time::UnixTime;
use accord_guest::tee::simulated::{CrlSpec, SimulatedConfig, SimulatedSnp};
use accord_guest::tee::simulated_tdx::{Issue, PcsResponses, SimulatedTdx};

pub use accord_collateral::test_vendor::Behavior;

/// How long a CRL issued by the simulated KDS is valid (AMD's are ~45 days).
pub const SNP_CRL_VALIDITY_DAYS: i64 = 7;

const DAY: i64 = 86_400;

/// Why the simulated vendor could not do what was asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorError(pub String);

impl fmt::Display for VendorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "INSECURE SIMULATION vendor: {}", self.0)
    }
}

impl std::error::Error for VendorError {}

fn err(message: impl Into<String>) -> VendorError {
    VendorError(message.into())
}

/// The instant now.
fn now() -> UnixTime {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    UnixTime(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// When a re-issue after one of `previous` is dated at `now`: an hour ago,
/// or a second after `previous` if that is later, but never in the future.
/// Issues are then strictly ordered (a rollback to an earlier one is
/// recognisable by its date) and valid at once.
fn reissue_instant(previous: UnixTime, now: UnixTime) -> UnixTime {
    UnixTime((previous.0 + 1).max(now.0 - 3600).min(now.0))
}

/// A simulated SEV-SNP chip and the CRLs issued for its product.
struct SnpChip {
    chip: Arc<SimulatedSnp>,
    /// Every CRL issued, oldest first.
    crls: Vec<(CrlSpec, Vec<u8>)>,
    /// The index of the one served.
    serving: usize,
}

/// The simulated TDX platform and the collateral issued for it.
struct TdxPlatform {
    platform: Arc<SimulatedTdx>,
    /// Every issue, oldest first.
    issues: Vec<(Issue, PcsResponses)>,
    /// The index of the one served.
    serving: usize,
}

#[derive(Default)]
struct Inner {
    snp: HashMap<Product, SnpChip>,
    tdx: Option<TdxPlatform>,
}

/// VCEKs issued on demand, per product and hwID (hex), per TCB.
type VcekCache = HashMap<(String, u64), Vec<u8>>;

/// The chips whose VCEKs the KDS issues, by hwID (lowercase hex).
#[derive(Default)]
struct Issuers {
    chips: HashMap<String, Arc<SimulatedSnp>>,
    issued: VcekCache,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running INSECURE simulated KDS and PCS.
pub struct SimulatedVendor {
    server: VendorServer,
    inner: Mutex<Inner>,
    issuers: Arc<Mutex<Issuers>>,
}

impl fmt::Debug for SimulatedVendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedVendor (INSECURE SIMULATION)")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

/// The TCB a KDS VCEK query names, strictly: exactly the SPL parameters
/// of `product`, each a small decimal.
fn query_tcb(
    product: Product,
    query: &std::collections::BTreeMap<String, String>,
) -> Option<TcbVersion> {
    let expected = if product.has_fmc() { 5 } else { 4 };
    if query.len() != expected {
        return None;
    }
    let spl = |name: &str| query.get(name)?.parse::<u8>().ok();
    Some(TcbVersion {
        fmc: if product.has_fmc() {
            Some(spl("fmcSPL")?)
        } else {
            None
        },
        bootloader: spl("blSPL")?,
        tee: spl("teeSPL")?,
        snp: spl("snpSPL")?,
        microcode: spl("ucodeSPL")?,
    })
}

fn issue_vcek(
    issuers: &Mutex<Issuers>,
    product: &str,
    hw_id: &str,
    query: &std::collections::BTreeMap<String, String>,
) -> Option<Vec<u8>> {
    let product = Product::from_product_name(product).filter(|p| p.name() == product)?;
    let tcb = query_tcb(product, query)?;
    let hw_id = hw_id.to_ascii_lowercase();
    let key = (hw_id.clone(), tcb.encode(product));
    let mut issuers = lock(issuers);
    if let Some(der) = issuers.issued.get(&key) {
        return Some(der.clone());
    }
    let chip = issuers.chips.get(&hw_id)?.clone();
    if chip.product() != product {
        return None;
    }
    let der = chip.issue_vcek(tcb).ok()?;
    issuers.issued.insert(key, der.clone());
    Some(der)
}

impl SimulatedVendor {
    /// Starts the simulated vendor on 127.0.0.1 (a free port), serving
    /// nothing yet. Says INSECURE SIMULATION on stderr.
    pub fn start() -> Result<Self, VendorError> {
        let issuers = Arc::new(Mutex::new(Issuers::default()));
        let mut vendor = Vendor::default();
        let on_demand = issuers.clone();
        vendor.set_vcek_issuer(Arc::new(move |product, hw_id, query| {
            issue_vcek(&on_demand, product, hw_id, query)
        }));
        let server = VendorServer::start(vendor)
            .map_err(|e| err(format!("cannot listen on 127.0.0.1: {e}")))?;
        eprintln!(
            "accord: INSECURE SIMULATION: simulated AMD KDS and Intel PCS at {} (the simulated chips' collateral only; proves nothing)",
            server.base_url()
        );
        Ok(Self {
            server,
            inner: Mutex::new(Inner::default()),
            issuers,
        })
    }

    /// Starts it serving the chips persisted in these state directories
    /// (created there on first use, as the agent would): SEV-SNP chips of
    /// the given products, and at most one TDX platform.
    pub fn start_with_state_dirs(
        snp: &[(&Path, Product)],
        tdx: Option<&Path>,
    ) -> Result<Self, VendorError> {
        let vendor = Self::start()?;
        for (dir, product) in snp {
            vendor.add_snp_state_dir(dir, *product)?;
        }
        if let Some(dir) = tdx {
            vendor.add_tdx_state_dir(dir)?;
        }
        Ok(vendor)
    }

    /// `http://127.0.0.1:PORT`: the KDS and the PCS base URL.
    pub fn url(&self) -> String {
        self.server.base_url()
    }

    /// The base URL to pass as `--kds-url`.
    pub fn kds_url(&self) -> String {
        self.url()
    }

    /// The base URL to pass as `--pcs-url`.
    pub fn pcs_url(&self) -> String {
        self.url()
    }

    /// The KDS and PCS endpoints for an `accord_collateral::Fetcher`.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints::new(&self.kds_url(), &self.pcs_url())
    }

    /// Opens the simulated SEV-SNP chip of `product` in `dir` (creating it
    /// on first use) and serves its collateral.
    pub fn add_snp_state_dir(&self, dir: &Path, product: Product) -> Result<(), VendorError> {
        let config = SimulatedConfig {
            product,
            ..SimulatedConfig::default()
        };
        let chip = SimulatedSnp::open(dir, &config).map_err(|e| err(e.to_string()))?;
        self.add_snp_chip(Arc::new(chip))
    }

    /// Serves `chip`'s VCEKs, certificate chain and an ARK-signed CRL
    /// (number 1, issued a day ago, revoking nothing). One chip per
    /// product; the same chip again is a no-op.
    pub fn add_snp_chip(&self, chip: Arc<SimulatedSnp>) -> Result<(), VendorError> {
        let product = chip.product();
        let mut inner = lock(&self.inner);
        if let Some(existing) = inner.snp.get(&product) {
            if existing.chip.ark_der() == chip.ark_der() {
                return Ok(());
            }
            return Err(err(format!(
                "it serves another simulated {product} chip already (one CRL per product)"
            )));
        }
        let at = now();
        let spec = CrlSpec {
            number: 1,
            this_update: UnixTime(at.0 - DAY),
            next_update: UnixTime(at.0 - DAY + SNP_CRL_VALIDITY_DAYS * DAY),
            revoked: Vec::new(),
        };
        let crl = chip.issue_crl(&spec).map_err(|e| err(e.to_string()))?;
        let hw_id = hex::encode(&chip.chip_id()[..product.hw_id_len()]);
        lock(&self.issuers).chips.insert(hw_id, chip.clone());
        let chain = chip.cert_chain_pem();
        self.server.update(|v| {
            v.set_cert_chain("vcek", product.name(), chain.as_bytes());
            v.set_crl("vcek", product.name(), &crl);
        });
        inner.snp.insert(
            product,
            SnpChip {
                chip,
                crls: vec![(spec, crl)],
                serving: 0,
            },
        );
        Ok(())
    }

    /// Opens the simulated TDX platform in `dir` (creating it on first
    /// use) and serves its collateral.
    pub fn add_tdx_state_dir(&self, dir: &Path) -> Result<(), VendorError> {
        let platform =
            SimulatedTdx::open(dir, &SimulatedConfig::default()).map_err(|e| err(e.to_string()))?;
        self.add_tdx_platform(Arc::new(platform))
    }

    /// Serves `platform`'s collateral: the issue every process makes today
    /// ([`Issue::of_day`]), which is also what its quotes carry. One
    /// platform; the same one again is a no-op.
    pub fn add_tdx_platform(&self, platform: Arc<SimulatedTdx>) -> Result<(), VendorError> {
        let mut inner = lock(&self.inner);
        if let Some(existing) = &inner.tdx {
            if existing.platform.root_ca_der() == platform.root_ca_der() {
                return Ok(());
            }
            return Err(err(
                "it serves another simulated TDX platform already (one QE identity and CRL set)",
            ));
        }
        let issue = Issue::of_day(now(), &[]);
        let responses = platform.pcs_responses_as(&issue);
        self.serve_tdx(platform.fmspc(), &responses);
        inner.tdx = Some(TdxPlatform {
            platform,
            issues: vec![(issue, responses)],
            serving: 0,
        });
        Ok(())
    }

    fn serve_tdx(&self, fmspc: [u8; 6], r: &PcsResponses) {
        self.server.update(|v| {
            v.set_tcb_info(
                &hex::encode(&fmspc),
                r.tcb_info.as_bytes(),
                &r.tcb_info_issuer_chain,
            );
            v.set_qe_identity(r.qe_identity.as_bytes(), &r.qe_identity_issuer_chain);
            v.set_pck_crl("platform", &r.pck_crl, &r.pck_crl_issuer_chain);
            v.set_root_crl(&r.root_ca_crl);
        });
    }

    /// Issues a new CRL for `product` that also revokes `serial` (an ASK
    /// or VCEK serial, big-endian: `SimulatedSnp::ask_serial`,
    /// `vcek_serial`), numbered one above the newest, dated just after it
    /// (an hour ago at the earliest, never in the future), and serves it.
    /// Returns its number.
    pub fn revoke_snp(&self, product: Product, serial: &[u8]) -> Result<u64, VendorError> {
        let mut inner = lock(&self.inner);
        let entry = inner
            .snp
            .get_mut(&product)
            .ok_or_else(|| err(format!("no simulated {product} chip is served")))?;
        let (newest, _) = entry.crls.last().ok_or_else(|| err("no CRL issued"))?;
        let at = now();
        let this_update = reissue_instant(newest.this_update, at);
        let mut revoked = newest.revoked.clone();
        if !revoked.iter().any(|(s, _)| s == serial) {
            revoked.push((serial.to_vec(), this_update));
        }
        let spec = CrlSpec {
            number: newest.number + 1,
            this_update,
            next_update: UnixTime(this_update.0 + SNP_CRL_VALIDITY_DAYS * DAY),
            revoked,
        };
        let crl = entry
            .chip
            .issue_crl(&spec)
            .map_err(|e| err(e.to_string()))?;
        let number = spec.number;
        entry.crls.push((spec, crl.clone()));
        entry.serving = entry.crls.len() - 1;
        self.server
            .update(|v| v.set_crl("vcek", product.name(), &crl));
        Ok(number)
    }

    /// Serves the CRL issued before the one served now for `product` (a
    /// rollback attempt: lower number, earlier thisUpdate). Returns its
    /// number.
    pub fn serve_older_snp_crl(&self, product: Product) -> Result<u64, VendorError> {
        let mut inner = lock(&self.inner);
        let entry = inner
            .snp
            .get_mut(&product)
            .ok_or_else(|| err(format!("no simulated {product} chip is served")))?;
        let older = entry
            .serving
            .checked_sub(1)
            .ok_or_else(|| err(format!("no {product} CRL older than the one served")))?;
        let (spec, crl) = entry.crls.get(older).ok_or_else(|| err("no such CRL"))?;
        let number = spec.number;
        let crl = crl.clone();
        entry.serving = older;
        self.server
            .update(|v| v.set_crl("vcek", product.name(), &crl));
        Ok(number)
    }

    /// The number of the CRL served for `product`.
    pub fn snp_crl_number(&self, product: Product) -> Option<u64> {
        let inner = lock(&self.inner);
        let entry = inner.snp.get(&product)?;
        entry.crls.get(entry.serving).map(|(spec, _)| spec.number)
    }

    /// The CRL (DER) served for `product`.
    pub fn snp_crl(&self, product: Product) -> Option<Vec<u8>> {
        let inner = lock(&self.inner);
        let entry = inner.snp.get(&product)?;
        entry.crls.get(entry.serving).map(|(_, crl)| crl.clone())
    }

    /// Re-issues the TDX collateral (TCB info, QE identity and both CRLs,
    /// dated just after the newest issue, an hour ago at the earliest,
    /// never in the future; CRL number one above it), with `serial` (a PCK certificate serial,
    /// `SimulatedTdx::pck_serial`) added to the PCK CRL, and serves it.
    /// Returns the CRL number.
    pub fn revoke_pck(&self, serial: &[u8]) -> Result<u64, VendorError> {
        self.reissue_tdx(Some(serial))
    }

    /// Re-issues the TDX collateral now, changing nothing but its dates and
    /// number (so that an older issue exists to roll back to). Returns the
    /// CRL number.
    pub fn reissue_tdx_collateral(&self) -> Result<u64, VendorError> {
        self.reissue_tdx(None)
    }

    fn reissue_tdx(&self, revoke: Option<&[u8]>) -> Result<u64, VendorError> {
        let mut inner = lock(&self.inner);
        let entry = inner
            .tdx
            .as_mut()
            .ok_or_else(|| err("no simulated TDX platform is served"))?;
        let (newest, _) = entry.issues.last().ok_or_else(|| err("nothing issued"))?;
        let issued = reissue_instant(newest.issued, now());
        let window = newest.next_update.0 - newest.issued.0;
        let mut revoked_pcks = newest.revoked_pcks.clone();
        if let Some(serial) = revoke
            && !revoked_pcks.iter().any(|s| s == serial)
        {
            revoked_pcks.push(serial.to_vec());
        }
        let issue = Issue {
            issued,
            next_update: UnixTime(issued.0 + window),
            crl_number: newest.crl_number + 1,
            revoked_pcks,
        };
        let responses = entry.platform.pcs_responses_as(&issue);
        let number = issue.crl_number;
        self.serve_tdx(entry.platform.fmspc(), &responses);
        entry.issues.push((issue, responses));
        entry.serving = entry.issues.len() - 1;
        Ok(number)
    }

    /// Serves the TDX collateral issued before the one served now (a
    /// rollback attempt: earlier TCB info, QE identity and CRLs). Returns
    /// its CRL number.
    pub fn serve_older_tdx_collateral(&self) -> Result<u64, VendorError> {
        let mut inner = lock(&self.inner);
        let entry = inner
            .tdx
            .as_mut()
            .ok_or_else(|| err("no simulated TDX platform is served"))?;
        let older = entry
            .serving
            .checked_sub(1)
            .ok_or_else(|| err("no TDX collateral older than the one served"))?;
        let (issue, responses) = entry
            .issues
            .get(older)
            .ok_or_else(|| err("no such issue"))?;
        let number = issue.crl_number;
        self.serve_tdx(entry.platform.fmspc(), responses);
        entry.serving = older;
        Ok(number)
    }

    /// The TDX collateral served now, in PCS response shapes.
    pub fn tdx_responses(&self) -> Option<PcsResponses> {
        let inner = lock(&self.inner);
        let entry = inner.tdx.as_ref()?;
        entry.issues.get(entry.serving).map(|(_, r)| r.clone())
    }

    /// Changes how it answers from now on (5xx, garbage, tampered bytes,
    /// a late answer, none).
    pub fn set_behavior(&self, behavior: Behavior) {
        self.server.set_behavior(behavior);
    }

    /// Stops listening: the vendor is down (for good).
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// Every request so far (path and query), in order.
    pub fn requests(&self) -> Vec<String> {
        self.server.requests()
    }

    /// How many requests asked for `path` (without the query), e.g.
    /// `/vcek/v1/Genoa/crl`.
    pub fn count(&self, path: &str) -> usize {
        self.server.count(path)
    }
}
