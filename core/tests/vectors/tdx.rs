//! TDX vectors: every real quote set of the test data (the `EXPECTED` table
//! below holds what its README documents for each), verified at its
//! documented instant against the collateral it was published with, and
//! the expected-to-fail cases plus mutation-driven negatives.
//!
//! Decision on trailing bytes: the v4-4 quote (Set 6) carries 39 bytes of
//! ASCII after its signature data, covered by no signature; accord rejects
//! non-zero trailing bytes, so Set 6 fails as malformed first. With the
//! trailer cut off it is rejected for its TCB, as the README requires.

use accord_core::crypto::CryptoProvider;
use accord_core::evidence::tdx::error::{CertRole, CrlRole, Dated, SignatureRole};
use accord_core::evidence::tdx::reference::{Mismatch, ReferenceField};
use accord_core::evidence::tdx::{
    Collateral, QuoteError, ReferenceError, TcbStatus, TdAttribute, TdxClaims, TdxError, TdxPolicy,
    TdxReferenceValues, VerifiedCollateral, verify, verify_with_collateral, verify_with_policy,
};
use accord_core::time::UnixTime;

use crate::common::{at, providers, try_read};

/// Decoded fields the README lists for one quote.
pub struct Expected {
    pub name: &'static str,
    pub quote: &'static str,
    pub version: u16,
    pub user_data: &'static str,
    pub tee_tcb_svn: &'static str,
    pub mr_seam: &'static str,
    pub mr_signer_seam: &'static str,
    pub seam_attributes: &'static str,
    pub td_attributes: &'static str,
    pub xfam: &'static str,
    pub mr_td: &'static str,
    pub mr_config_id: &'static str,
    pub mr_owner: &'static str,
    pub mr_owner_config: &'static str,
    pub rtmrs: [&'static str; 4],
    pub report_data: &'static str,
    pub tee_tcb_svn2: Option<&'static str>,
    pub mr_service_td: Option<&'static str>,
    pub qe_mr_enclave: &'static str,
    pub qe_mr_signer: &'static str,
    pub qe_isv_prod_id: u16,
    pub qe_isv_svn: u16,
    pub qe_cpu_svn: &'static str,
    pub qe_attributes: &'static str,
    pub pck_serial: &'static str,
    pub fmspc: &'static str,
    pub pce_id: &'static str,
    pub pce_svn: u16,
    pub sgx_comps: [u8; 16],
    pub cpu_svn: &'static str,
    pub tcb_eval: u32,
}

/// The test data's documented fields, one entry per quote set, in order.
pub const EXPECTED: &[Expected] = &[
    Expected {
        name: "1",
        quote: "tdx/tdx-quote-v4-1.bin",
        version: 4,
        user_data: "889b7d6ff9df2405b240a830e73faf3d00000000",
        tee_tcb_svn: "06010300000000000000000000000000",
        mr_seam: "5b38e33a6487958b72c3c12a938eaa5e3fd4510c51aeeab58c7d5ecee41d7c436489d6c8e4f92f160b7cad34207b00c1",
        mr_signer_seam: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        seam_attributes: "0000000000000000",
        td_attributes: "0000001000000000",
        xfam: "e702060000000000",
        mr_td: "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7",
        mr_config_id: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner_config: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        rtmrs: [
            "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9bc9c0",
            "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579e9378",
            "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48c3132",
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ],
        report_data: "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20",
        tee_tcb_svn2: None,
        mr_service_td: None,
        qe_mr_enclave: "e5a3a7b5d830c2953b98534c6c59a3a34fdc34e933f7f5898f0a85cf08846bca",
        qe_mr_signer: "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5",
        qe_isv_prod_id: 2,
        qe_isv_svn: 6,
        qe_cpu_svn: "0303191b04ff00060000000000000000",
        qe_attributes: "1500000000000000e700000000000000",
        pck_serial: "3c16ed54eacbb4ced072be72630c85788cf46e36",
        fmspc: "b0c06f000000",
        pce_id: "0000",
        pce_svn: 11,
        sgx_comps: [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
        cpu_svn: "03030202040100050000000000000000",
        tcb_eval: 17,
    },
    Expected {
        name: "2",
        quote: "tdx/tdx-quote-v4-2.bin",
        version: 4,
        user_data: "5fdd5ea20205694b1240ffe054cfd68300000000",
        tee_tcb_svn: "06010400000000000000000000000000",
        mr_seam: "5b38e33a6487958b72c3c12a938eaa5e3fd4510c51aeeab58c7d5ecee41d7c436489d6c8e4f92f160b7cad34207b00c1",
        mr_signer_seam: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        seam_attributes: "0000000000000000",
        td_attributes: "0000001000000000",
        xfam: "0702000000000000",
        mr_td: "f06dfda6dce1cf904d4e2bab1dc370634cf95cefa2ceb2de2eee127c9382698090d7a4a13e14c536ec6c9c3c8fa87077",
        mr_config_id: "0112a20aed7d6c68601e9f6e108a93b4199ae7231684307ffc4833c9cd08d45de7000000000000000000000000000000",
        mr_owner: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner_config: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        rtmrs: [
            "68102e7b524af310f7b7d426ce75481e36c40f5d513a9009c046e9d37e31551f0134d954b496a3357fd61d03f07ffe96",
            "19d16ecd33220ee15965b4fb28a0661e85ec4cad0a20d920bf4028f58ad014b262af3c9b0530f283e7d032e7bdca6308",
            "05ac95f479e23db627217ce58b2587483c9ee4f374a7d8ebee3b812b8cfd8fd8fca04696369c33bd5279590d83e713c0",
            "287a9242edd8c8429913ec66f44af611b820cf9b574f303a6caeddeb4c9826311aef6e518aaf4a17f55a81154592b7b3",
        ],
        report_data: "0001d579ba6e734a1046feb6112f852df5f4f1e44a4e7ce1755ce3b07bd6aaab04e89ca01fdf4956d2f609c2709731cb813a0000000000000000000000000000",
        tee_tcb_svn2: None,
        mr_service_td: None,
        qe_mr_enclave: "e5a3a7b5d830c2953b98534c6c59a3a34fdc34e933f7f5898f0a85cf08846bca",
        qe_mr_signer: "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5",
        qe_isv_prod_id: 2,
        qe_isv_svn: 6,
        qe_cpu_svn: "0404090905ff00020000000000000000",
        qe_attributes: "15000000000000000700000000000000",
        pck_serial: "3d535559206c42dcc20de761aa3c92b8ed396c60",
        fmspc: "20a06f000000",
        pce_id: "0000",
        pce_svn: 13,
        sgx_comps: [4, 4, 2, 2, 5, 255, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
        cpu_svn: "0404020205ff00020000000000000000",
        tcb_eval: 17,
    },
    Expected {
        name: "3",
        quote: "tdx/tdx-quote-v5-1.bin",
        version: 5,
        user_data: "ba103c0e5dffa40351f9d5dd559888eb00000000",
        tee_tcb_svn: "0b010400000000000000000000000000",
        mr_seam: "7bf063280e94fb051f5dd7b1fc59ce9aac42bb961df8d44b709c9b0ff87a7b4df648657ba6d1189589feab1d5a3c9a9d",
        mr_signer_seam: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        seam_attributes: "0000000000000000",
        td_attributes: "0000001000000000",
        xfam: "e702060000000000",
        mr_td: "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876",
        mr_config_id: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner_config: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        rtmrs: [
            "5c8daf76063a71ac8fcef4067564661fc682ed7944c7a5d21dbbced02f61ceff4ba0678c6aef3bdae8cbc614cec24619",
            "463acaace1b6e97c76e92e41fe312aa66f3fd4dad60ec7acf169859db0343e3d1e591646795cdc80fbc0ca5f7041d253",
            "6369b9c9a3b791ebcbdc5a0bb9536cfb57f50df2b393b33c8b29616d3568baa61f4b59dc6092e31ea8764bcbdfc69f20",
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ],
        report_data: "945eaacf5abc1f719d8666a942fda03d1edcb4490277396093dc5a5289ab9f1e094aed63060cd4a4933a4dd537ed1255c9c79ecb3ed82cd1b486233e31c25c3a",
        tee_tcb_svn2: Some("0d010400000000000000000000000000"),
        mr_service_td: Some(
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ),
        qe_mr_enclave: "b7ae9ab69e76f7794a56b0db1915281d435d488c91d406ed33a7939caf8730f8",
        qe_mr_signer: "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5",
        qe_isv_prod_id: 2,
        qe_isv_svn: 7,
        qe_cpu_svn: "0404191b04ff00060000000000000000",
        qe_attributes: "1500000000000000e700000000000000",
        pck_serial: "281450cd833a6cf298ea01209af1400091fb756b",
        fmspc: "90c06f000000",
        pce_id: "0000",
        pce_svn: 13,
        sgx_comps: [4, 4, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
        cpu_svn: "04040202040100050000000000000000",
        tcb_eval: 18,
    },
    Expected {
        name: "3b",
        quote: "tdx/tdx-quote-v5-1.bin",
        version: 5,
        user_data: "ba103c0e5dffa40351f9d5dd559888eb00000000",
        tee_tcb_svn: "0b010400000000000000000000000000",
        mr_seam: "7bf063280e94fb051f5dd7b1fc59ce9aac42bb961df8d44b709c9b0ff87a7b4df648657ba6d1189589feab1d5a3c9a9d",
        mr_signer_seam: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        seam_attributes: "0000000000000000",
        td_attributes: "0000001000000000",
        xfam: "e702060000000000",
        mr_td: "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f876",
        mr_config_id: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner_config: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        rtmrs: [
            "5c8daf76063a71ac8fcef4067564661fc682ed7944c7a5d21dbbced02f61ceff4ba0678c6aef3bdae8cbc614cec24619",
            "463acaace1b6e97c76e92e41fe312aa66f3fd4dad60ec7acf169859db0343e3d1e591646795cdc80fbc0ca5f7041d253",
            "6369b9c9a3b791ebcbdc5a0bb9536cfb57f50df2b393b33c8b29616d3568baa61f4b59dc6092e31ea8764bcbdfc69f20",
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ],
        report_data: "945eaacf5abc1f719d8666a942fda03d1edcb4490277396093dc5a5289ab9f1e094aed63060cd4a4933a4dd537ed1255c9c79ecb3ed82cd1b486233e31c25c3a",
        tee_tcb_svn2: Some("0d010400000000000000000000000000"),
        mr_service_td: Some(
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ),
        qe_mr_enclave: "b7ae9ab69e76f7794a56b0db1915281d435d488c91d406ed33a7939caf8730f8",
        qe_mr_signer: "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5",
        qe_isv_prod_id: 2,
        qe_isv_svn: 7,
        qe_cpu_svn: "0404191b04ff00060000000000000000",
        qe_attributes: "1500000000000000e700000000000000",
        pck_serial: "281450cd833a6cf298ea01209af1400091fb756b",
        fmspc: "90c06f000000",
        pce_id: "0000",
        pce_svn: 13,
        sgx_comps: [4, 4, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
        cpu_svn: "04040202040100050000000000000000",
        tcb_eval: 18,
    },
    Expected {
        name: "4",
        quote: "tdx/tdx-quote-v5-2-tcb-unsupported.bin",
        version: 5,
        user_data: "dd130a3f3a9e91528dafeb58cc82c33b00000000",
        tee_tcb_svn: "07010300000000000000000000000000",
        mr_seam: "49b66faa451d19ebbdbe89371b8daf2b65aa3984ec90110343e9e2eec116af08850fa20e3b1aa9a874d77a65380ee7e6",
        mr_signer_seam: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        seam_attributes: "0000000000000000",
        td_attributes: "0000001000000000",
        xfam: "e718060000000000",
        mr_td: "273828c46252fcbdd8ad2dd907130222b03466d52a2911d70c1a5950895d6bd1ae451d382d5a9b1b4c0ed0e5ae9a3dbd",
        mr_config_id: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner_config: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        rtmrs: [
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ],
        report_data: "d2142b643598eb5fae2bc8529dd79a558b29f868ccbb6531cb28dab9dce477280000000000000000000000000000000000000000000000000000000000000000",
        tee_tcb_svn2: Some("0d010300000000000000000000000000"),
        mr_service_td: Some(
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ),
        qe_mr_enclave: "b7ae9ab69e76f7794a56b0db1915281d435d488c91d406ed33a7939caf8730f8",
        qe_mr_signer: "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5",
        qe_isv_prod_id: 2,
        qe_isv_svn: 7,
        qe_cpu_svn: "0303191b04ff00030000000000000000",
        qe_attributes: "1500000000000000e700000000000000",
        pck_serial: "e825941783e2cdb6a42d95a56f871957855b0edd",
        fmspc: "90c06f000000",
        pce_id: "0000",
        pce_svn: 13,
        sgx_comps: [3, 3, 2, 2, 4, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
        cpu_svn: "03030202040100030000000000000000",
        tcb_eval: 18,
    },
    Expected {
        name: "5",
        quote: "tdx/tdx-quote-v4-3.bin",
        version: 4,
        user_data: "d099bfec0a477aa85a605dceabf2b10800000000",
        tee_tcb_svn: "03000500000000000000000000000000",
        mr_seam: "2fd279c16164a93dd5bf373d834328d46008c2b693af9ebb865b08b2ced320c9a89b4869a9fab60fbe9d0c5a5363c656",
        mr_signer_seam: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        seam_attributes: "0000000000000000",
        td_attributes: "0100001000000000",
        xfam: "e742060000000000",
        mr_td: "705ee9381b8633a9fbe532b52345e8433343d2868959f57889d84ca377c395b689cac1599ccea1b7d420483a9ce5f031",
        mr_config_id: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner_config: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        rtmrs: [
            "e940da7c2712d2790e2961e00484f4fa8e6f9eed71361655ae22699476b14f9e63867eb41edd4b480fef0c59f496b288",
            "559cfcf42716ed6c40a48a73d5acb7da255435012f0a9f00fbe8c1c57612ede486a5684c4c9ff3ddf52315fcdca3a596",
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ],
        report_data: "7c71fe2c86eff65a7cf8dbc22b3275689fd0464a267baced1bf94fc1324656aeb755da3d44d098c0c87382f3a5f85b45c8a28fee1d3bdb38342bf96671501429",
        tee_tcb_svn2: None,
        mr_service_td: None,
        qe_mr_enclave: "853e298f3b7cde28b06493d06fb2ad6f9566a97fea6d3de66236b2af1a35150f",
        qe_mr_signer: "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5",
        qe_isv_prod_id: 2,
        qe_isv_svn: 4,
        qe_cpu_svn: "05050d0f03ff00030000000000000000",
        qe_attributes: "1500000000000000e700000000000000",
        pck_serial: "99c1712024a45e82ef4f19be96bf52ea98e95b19",
        fmspc: "50806f000000",
        pce_id: "0000",
        pce_svn: 11,
        sgx_comps: [5, 5, 13, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
        cpu_svn: "05050d02030100030000000000000000",
        tcb_eval: 15,
    },
    Expected {
        name: "6",
        quote: "tdx/tdx-quote-v4-4-tcb-unsupported.bin",
        version: 4,
        user_data: "739c3f292a15bace1f726351a70d4b7900000000",
        tee_tcb_svn: "03000400000000000000000000000000",
        mr_seam: "2fd279c16164a93dd5bf373d834328d46008c2b693af9ebb865b08b2ced320c9a89b4869a9fab60fbe9d0c5a5363c656",
        mr_signer_seam: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        seam_attributes: "0000000000000000",
        td_attributes: "0000004000000000",
        xfam: "e71a060000000000",
        mr_td: "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5e119d7215cbb",
        mr_config_id: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        mr_owner_config: "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        rtmrs: [
            "2927da70461cd63266f43230cc1849c03ef25ebe490062a801d8fcc80af42976823adf08f833c1e50b51779c6593f32a",
            "2c700b8ba9b85783f8be9fb9443647bdc0bb3c50747f06297cc6538c25a5f589c4b56d035c59107c6bc5800db2cacb61",
            "8652f0caaba7e215ea442dc36a4499d8fec3362f3a0b2ca151cbe4b3e6466fe59c7368b3c2287fc7c3bf5c924eb4424e",
            "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
        ],
        report_data: "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b987a467dacead6f0c87a6d766c66f6f29f8acb281f1113",
        tee_tcb_svn2: None,
        mr_service_td: None,
        qe_mr_enclave: "853e298f3b7cde28b06493d06fb2ad6f9566a97fea6d3de66236b2af1a35150f",
        qe_mr_signer: "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5",
        qe_isv_prod_id: 2,
        qe_isv_svn: 4,
        qe_cpu_svn: "04040d0f03ff00030000000000000000",
        qe_attributes: "1500000000000000e700000000000000",
        pck_serial: "bba6c175d838b8df3900cc3411f24f512d104102",
        fmspc: "50806f000000",
        pce_id: "0000",
        pce_svn: 11,
        sgx_comps: [3, 3, 2, 2, 2, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
        cpu_svn: "03030202020100020000000000000000",
        tcb_eval: 15,
    },
];

/// How a set's collateral is assembled.
#[derive(Clone, Copy)]
pub enum Source {
    /// A `tdx-collateral-N.json` file.
    Json(&'static str),
    /// `tdx-collateral-3.json` with the TCB info of `tdx-tcbinfo-3b-pcs.json`.
    Json3b,
    /// The 2023 PCS-format parts (Sets 5 and 6).
    Pcs4,
}

/// One quote set: quote, collateral, instant, window, verdict.
pub struct Set {
    pub name: &'static str,
    pub source: Source,
    pub at: &'static str,
    /// The window where everything is valid (accepted sets only).
    pub window: Option<(&'static str, &'static str)>,
    /// Whether the quote is accepted (status UpToDate).
    pub accept: bool,
    /// The TD runs with DEBUG (Set 5): accepted only when debug is allowed.
    pub debug: bool,
}

pub const SETS: &[Set] = &[
    Set {
        name: "1",
        source: Source::Json("tdx/tdx-collateral-1.json"),
        at: "2025-07-01T00:00:00Z",
        window: Some(("2025-06-19T10:32:27Z", "2025-07-19T10:00:35Z")),
        accept: true,
        debug: false,
    },
    Set {
        name: "2",
        source: Source::Json("tdx/tdx-collateral-2.json"),
        at: "2025-09-15T00:00:00Z",
        window: Some(("2025-09-02T07:41:59Z", "2025-10-02T07:03:51Z")),
        accept: true,
        debug: false,
    },
    Set {
        name: "3",
        source: Source::Json("tdx/tdx-collateral-3.json"),
        at: "2026-03-01T00:00:00Z",
        window: Some(("2026-02-18T10:58:51Z", "2026-03-20T10:41:15Z")),
        accept: true,
        debug: false,
    },
    Set {
        name: "3b",
        source: Source::Json3b,
        at: "2026-03-01T00:00:00Z",
        window: Some(("2026-02-18T10:42:15Z", "2026-03-03T14:49:26Z")),
        accept: true,
        debug: false,
    },
    Set {
        name: "4",
        source: Source::Json("tdx/tdx-collateral-3.json"),
        at: "2026-03-01T00:00:00Z",
        window: None,
        accept: false,
        debug: false,
    },
    Set {
        name: "5",
        source: Source::Pcs4,
        at: "2023-07-01T01:00:00Z",
        window: Some(("2023-06-18T08:42:58Z", "2023-07-08T07:24:59Z")),
        accept: true,
        debug: true,
    },
    Set {
        name: "6",
        source: Source::Pcs4,
        at: "2023-07-01T01:00:00Z",
        window: None,
        accept: false,
        debug: false,
    },
];

fn text(path: &str) -> Option<String> {
    try_read(path).map(|b| String::from_utf8(b).unwrap())
}

/// Loads a set's collateral; `None` when vectors are absent.
pub fn collateral(source: Source) -> Option<Collateral> {
    Some(match source {
        Source::Json(path) => Collateral::from_json(&try_read(path)?).unwrap(),
        Source::Json3b => Collateral::from_json(&try_read("tdx/tdx-collateral-3.json")?)
            .unwrap()
            .with_pcs_tcb_info(&text("tdx/tdx-tcbinfo-3b-pcs.json")?)
            .unwrap(),
        Source::Pcs4 => {
            let signing = text("tdx/tdx-tcb-signing-chain-4.pem")?;
            Collateral::from_pcs_parts(
                &text("tdx/tdx-tcbinfo-4-pcs.json")?,
                &signing,
                &text("tdx/tdx-qeidentity-4-pcs.json")?,
                &signing,
                &try_read("tdx/tdx-pckcrl-platform-4.der")?,
                &text("tdx/tdx-pckcrl-issuer-chain-4.pem")?,
                &try_read("tdx/tdx-rootcrl-4.der")?,
            )
            .unwrap()
        }
    })
}

pub fn expected(name: &str) -> &'static Expected {
    EXPECTED.iter().find(|e| e.name == name).unwrap()
}

/// Loads quote and collateral of a set.
pub fn load(set: &Set) -> Option<(Vec<u8>, Collateral)> {
    Some((try_read(expected(set.name).quote)?, collateral(set.source)?))
}

fn policy(set: &Set) -> TdxPolicy {
    TdxPolicy {
        allow_debug: set.debug,
        ..TdxPolicy::default()
    }
}

fn check_claims(e: &Expected, c: &TdxClaims) {
    let n = e.name;
    assert_eq!(c.header.version, e.version, "{n}");
    assert_eq!(c.header.att_key_type, 2, "{n}");
    assert_eq!(c.header.tee_type, 0x81, "{n}");
    assert_eq!(
        c.header.qe_vendor_id, "939a7233f79c4ca9940a0db3957f0607",
        "{n}"
    );
    assert_eq!(c.header.user_data, e.user_data, "{n}");
    let b = &c.body;
    assert_eq!(b.tee_tcb_svn, e.tee_tcb_svn, "{n}");
    assert_eq!(b.mr_seam, e.mr_seam, "{n}");
    assert_eq!(b.mr_signer_seam, e.mr_signer_seam, "{n}");
    assert_eq!(b.seam_attributes, e.seam_attributes, "{n}");
    assert_eq!(b.td_attributes, e.td_attributes, "{n}");
    assert_eq!(b.xfam, e.xfam, "{n}");
    assert_eq!(b.mr_td, e.mr_td, "{n}");
    assert_eq!(b.mr_config_id, e.mr_config_id, "{n}");
    assert_eq!(b.mr_owner, e.mr_owner, "{n}");
    assert_eq!(b.mr_owner_config, e.mr_owner_config, "{n}");
    assert_eq!(b.rtmrs, e.rtmrs.map(String::from), "{n}");
    assert_eq!(b.report_data, e.report_data, "{n}");
    assert_eq!(b.tee_tcb_svn2.as_deref(), e.tee_tcb_svn2, "{n}");
    assert_eq!(b.mr_service_td.as_deref(), e.mr_service_td, "{n}");
    let q = &c.qe_report;
    assert_eq!(q.mr_enclave, e.qe_mr_enclave, "{n}");
    assert_eq!(q.mr_signer, e.qe_mr_signer, "{n}");
    assert_eq!(q.isv_prod_id, e.qe_isv_prod_id, "{n}");
    assert_eq!(q.isv_svn, e.qe_isv_svn, "{n}");
    assert_eq!(q.cpu_svn, e.qe_cpu_svn, "{n}");
    assert_eq!(q.attributes, e.qe_attributes, "{n}");
    let p = &c.pck;
    assert_eq!(p.serial, e.pck_serial, "{n}");
    assert_eq!(p.fmspc, e.fmspc, "{n}");
    assert_eq!(p.pce_id, e.pce_id, "{n}");
    assert_eq!(p.pce_svn, e.pce_svn, "{n}");
    assert_eq!(p.sgx_tcb_components, e.sgx_comps, "{n}");
    assert_eq!(p.cpu_svn, e.cpu_svn, "{n}");
    assert_eq!(
        p.sgx_type,
        accord_core::evidence::tdx::pck::SgxType::Scalable,
        "{n}"
    );
    assert_eq!(c.tcb_evaluation_data_number, e.tcb_eval, "{n}");
    assert_eq!(c.tcb_status, TcbStatus::UpToDate, "{n}");
    assert_eq!(c.platform_tcb_status, TcbStatus::UpToDate, "{n}");
    assert_eq!(c.qe_tcb_status, TcbStatus::UpToDate, "{n}");
    assert!(c.advisory_ids.is_empty(), "{n}");
}

#[test]
fn every_real_set_verifies_with_its_documented_fields() {
    for set in SETS.iter().filter(|s| s.accept) {
        let Some((quote, coll)) = load(set) else {
            return;
        };
        for provider in providers() {
            let claims = verify_with_policy(&quote, &coll, at(set.at), *provider, &policy(set))
                .unwrap_or_else(|e| panic!("set {} with {}: {e}", set.name, provider.name()));
            check_claims(expected(set.name), &claims);
            // TDX module identity: evaluated iff tee_tcb_svn[1] > 0.
            assert_eq!(
                claims.tdx_module_tcb_status.is_some(),
                set.name != "5",
                "set {}",
                set.name
            );
            let json = serde_json::to_value(&claims).unwrap();
            assert_eq!(json["tcb_status"], "UpToDate");
            let tcb_date = match set.name {
                "1" | "2" => "2024-03-13T00:00:00Z",
                "3" | "3b" => "2024-11-13T00:00:00Z",
                _ => "2023-02-15T00:00:00Z",
            };
            assert_eq!(claims.platform_tcb_date, tcb_date, "set {}", set.name);
            let (start, end) = set.window.unwrap();
            assert_eq!(
                (
                    claims.collateral_valid_from.as_str(),
                    claims.collateral_valid_until.as_str()
                ),
                (start, end)
            );
        }
    }
}

#[test]
fn debug_td_is_refused_by_default() {
    let set = SETS.iter().find(|s| s.name == "5").unwrap();
    let Some((quote, coll)) = load(set) else {
        return;
    };
    for provider in providers() {
        assert_eq!(
            verify(&quote, &coll, at(set.at), *provider).unwrap_err(),
            TdxError::DebugTd
        );
    }
}

#[test]
fn unsupported_tcb_levels_are_rejected() {
    for set in SETS.iter().filter(|s| !s.accept) {
        let Some((quote, coll)) = load(set) else {
            return;
        };
        for provider in providers() {
            let err = verify_with_policy(
                &quote,
                &coll,
                at(set.at),
                *provider,
                &TdxPolicy::authenticity_only(),
            )
            .unwrap_err();
            if set.name == "6" {
                // Rejected as malformed first: 39 non-zero unauthenticated bytes.
                assert!(
                    matches!(
                        err,
                        TdxError::Quote(QuoteError::TrailingBytes { count: 39, .. })
                    ),
                    "{err}"
                );
                let trimmed = &quote[..quote.len() - 39];
                let err = verify_with_policy(
                    trimmed,
                    &coll,
                    at(set.at),
                    *provider,
                    &TdxPolicy::authenticity_only(),
                )
                .unwrap_err();
                assert_eq!(err, TdxError::TcbLevelNotSupported, "set 6 trimmed");
            } else {
                assert_eq!(err, TdxError::TcbLevelNotSupported, "set {}", set.name);
            }
            assert!(err.to_string().contains("TCB level not supported") || set.name == "6");
        }
    }
}

fn shift(t: &str, seconds: i64) -> UnixTime {
    UnixTime(at(t).0 + seconds)
}

#[test]
fn windows_hold_to_the_second() {
    for set in SETS.iter() {
        let Some((start, end)) = set.window else {
            continue;
        };
        let Some((quote, coll)) = load(set) else {
            return;
        };
        for provider in providers() {
            let p = policy(set);
            for ok in [shift(start, 0), shift(end, 0)] {
                verify_with_policy(&quote, &coll, ok, *provider, &p)
                    .unwrap_or_else(|e| panic!("set {} at {ok}: {e}", set.name));
            }
            for bad in [shift(start, -1), shift(end, 1)] {
                let err = verify_with_policy(&quote, &coll, bad, *provider, &p).unwrap_err();
                assert!(
                    matches!(err, TdxError::OutsideValidity { at, .. } if at == bad),
                    "set {} at {bad}: {err}",
                    set.name
                );
            }
            // The cached collateral carries exactly this window.
            let vc = VerifiedCollateral::verify(&coll, at(set.at), *provider).unwrap();
            assert_eq!(vc.validity(), (at(start), at(end)), "set {}", set.name);
            assert!(matches!(
                verify_with_collateral(&vc, &quote, shift(end, 1), *provider),
                Err(TdxError::OutsideValidity {
                    item: Dated::Collateral,
                    ..
                })
            ));
        }
    }
}

/// Byte ranges of a quote's signed parts: (name, start, end).
fn signed_parts(quote: &[u8]) -> Vec<(&'static str, usize, usize)> {
    let signed = if quote[0] == 4 { 632 } else { 702 };
    let sig = signed + 4;
    let key = sig + 64;
    let qe = key + 64 + 6;
    let auth_len = u16::from_le_bytes([quote[qe + 448], quote[qe + 449]]) as usize;
    vec![
        ("header+body", 0, signed),
        ("attestation key", key, key + 64),
        ("QE report", qe, qe + 384),
        ("auth data", qe + 450, qe + 450 + auth_len),
    ]
}

#[test]
fn flipping_any_signed_byte_is_rejected() {
    for set in SETS.iter().filter(|s| s.accept && s.name != "3b") {
        let Some((quote, coll)) = load(set) else {
            return;
        };
        for (provider, remember) in providers().iter().flat_map(|p| [(p, false), (p, true)]) {
            let mut vc = VerifiedCollateral::verify(&coll, at(set.at), *provider).unwrap();
            if remember {
                // The quote's platform is remembered: the PCK chain check is
                // skipped, every other check must still catch the flips.
                vc.remember_platform(&quote, at(set.at), *provider).unwrap();
            }
            verify_with_collateral(&vc, &quote, at(set.at), *provider).unwrap();
            for (part, start, end) in signed_parts(&quote) {
                for i in start..end {
                    let mut bad = quote.clone();
                    bad[i] ^= 0x01;
                    let err = verify_with_collateral(&vc, &bad, at(set.at), *provider)
                        .err()
                        .unwrap_or_else(|| {
                            panic!("set {}: flipped {part} byte {i} accepted", set.name)
                        });
                    match part {
                        "header+body" if i >= 48 + if quote[0] == 5 { 6 } else { 0 } => {
                            assert_eq!(
                                err,
                                TdxError::Signature(SignatureRole::QuoteBody),
                                "byte {i}"
                            )
                        }
                        "QE report" => assert_eq!(
                            err,
                            TdxError::Signature(SignatureRole::QeReport),
                            "byte {i}"
                        ),
                        "auth data" => assert_eq!(err, TdxError::QeReportData, "byte {i}"),
                        _ => {}
                    }
                }
            }
        }
    }
}

#[test]
fn readme_mrtd_and_reportdata_flips_fail() {
    for (name, mrtd) in [("1", 48 + 136), ("3", 54 + 136)] {
        let set = SETS.iter().find(|s| s.name == name).unwrap();
        let Some((quote, coll)) = load(set) else {
            return;
        };
        for provider in providers() {
            for offset in [mrtd, mrtd - 136 + 520] {
                let mut bad = quote.clone();
                bad[offset] ^= 1;
                assert_eq!(
                    verify(&bad, &coll, at(set.at), *provider).unwrap_err(),
                    TdxError::Signature(SignatureRole::QuoteBody)
                );
            }
        }
    }
}

#[test]
fn tampered_collateral_is_rejected() {
    let set = &SETS[0];
    let Some((quote, coll)) = load(set) else {
        return;
    };
    for provider in providers() {
        let t = at(set.at);
        let mut c = coll.clone();
        c.tcb_info_signature[10] ^= 1;
        assert_eq!(
            verify(&quote, &c, t, *provider).unwrap_err(),
            TdxError::Signature(SignatureRole::TcbInfo)
        );
        let mut c = coll.clone();
        c.qe_identity_signature[40] ^= 1;
        assert_eq!(
            verify(&quote, &c, t, *provider).unwrap_err(),
            TdxError::Signature(SignatureRole::QeIdentity)
        );
        let mut c = coll.clone();
        c.tcb_info = c.tcb_info.replacen("\"UpToDate\"", "\"OutOfDate\"", 1);
        assert_eq!(
            verify(&quote, &c, t, *provider).unwrap_err(),
            TdxError::Signature(SignatureRole::TcbInfo)
        );
        let mut c = coll.clone();
        c.qe_identity = c
            .qe_identity
            .replacen("\"isvprodid\":2", "\"isvprodid\":3", 1);
        assert_eq!(
            verify(&quote, &c, t, *provider).unwrap_err(),
            TdxError::Signature(SignatureRole::QeIdentity)
        );
        let mut c = coll.clone();
        let n = c.pck_crl.len();
        c.pck_crl[n - 5] ^= 1;
        assert!(matches!(
            verify(&quote, &c, t, *provider).unwrap_err(),
            TdxError::Crl {
                role: CrlRole::Pck,
                ..
            }
        ));
        let mut c = coll.clone();
        let n = c.root_ca_crl.len();
        c.root_ca_crl[n - 5] ^= 1;
        assert!(matches!(
            verify(&quote, &c, t, *provider).unwrap_err(),
            TdxError::Crl {
                role: CrlRole::RootCa,
                ..
            }
        ));
    }
}

#[test]
fn wrong_fmspc_collateral_is_rejected() {
    let Some(quote) = try_read("tdx/tdx-quote-v4-1.bin") else {
        return;
    };
    let Some(coll) = collateral(Source::Json("tdx/tdx-collateral-2.json")) else {
        return;
    };
    for provider in providers() {
        let err = verify(&quote, &coll, at("2025-09-15T00:00:00Z"), *provider).unwrap_err();
        assert!(matches!(err, TdxError::FmspcMismatch { .. }), "{err}");
        assert!(
            err.to_string().contains("b0c06f000000") && err.to_string().contains("20a06f000000"),
            "{err}"
        );
    }
}

#[test]
fn old_tcb_signing_certificate_fails_on_validity_not_key() {
    let set = &SETS[0];
    let Some((quote, coll)) = load(set) else {
        return;
    };
    let Some(old) = text("tdx/tdx-tcb-signing-chain-4.pem") else {
        return;
    };
    for provider in providers() {
        let mut c = coll.clone();
        c.tcb_info_issuer_chain = old.clone();
        let err = verify(&quote, &c, at(set.at), *provider).unwrap_err();
        assert!(
            matches!(
                err,
                TdxError::OutsideValidity {
                    item: Dated::Certificate(CertRole::TcbInfoSigner),
                    ..
                }
            ),
            "{err}"
        );
        let mut c = coll.clone();
        c.qe_identity_issuer_chain = old.clone();
        let err = verify(&quote, &c, at(set.at), *provider).unwrap_err();
        assert!(
            matches!(
                err,
                TdxError::OutsideValidity {
                    item: Dated::Certificate(CertRole::QeIdentitySigner),
                    ..
                }
            ),
            "{err}"
        );
    }
}

#[test]
fn quote_outside_its_pck_validity_is_rejected() {
    // Set 1's quote against Set 5's 2023 collateral: the collateral is valid
    // then, the 2025 PCK certificate is not yet.
    let Some((quote, _)) = load(&SETS[0]) else {
        return;
    };
    let Some(coll) = collateral(Source::Pcs4) else {
        return;
    };
    for provider in providers() {
        let err = verify(&quote, &coll, at("2023-07-01T01:00:00Z"), *provider).unwrap_err();
        assert!(
            matches!(
                err,
                TdxError::OutsideValidity {
                    item: Dated::Certificate(CertRole::PckLeaf),
                    ..
                }
            ),
            "{err}"
        );
    }
}

fn full_reference(e: &Expected) -> TdxReferenceValues {
    serde_json::from_value(serde_json::json!({
        "MrTd": e.mr_td,
        "MrSeam": e.mr_seam,
        "Rtmrs": e.rtmrs,
        "Xfam": e.xfam,
        "MrConfigId": e.mr_config_id,
        "MrSignerSeam": e.mr_signer_seam,
        "TdAttributes": e.td_attributes,
        "ReportData": e.report_data,
        "MinTCBEvaluationDataNumber": e.tcb_eval,
        "AcceptedTcbStatuses": ["UpToDate"],
    }))
    .unwrap()
}

fn reference_result(
    vc: &VerifiedCollateral,
    quote: &[u8],
    t: UnixTime,
    provider: &dyn CryptoProvider,
    r: &TdxReferenceValues,
) -> Result<(), ReferenceError> {
    let verified = verify_with_collateral(vc, quote, t, provider).unwrap();
    r.expect()?.compare(&verified)
}

#[test]
fn each_reference_field_mismatch_is_named() {
    let set = &SETS[1];
    let e = expected(set.name);
    let Some((quote, coll)) = load(set) else {
        return;
    };
    for provider in providers() {
        let t = at(set.at);
        let vc = VerifiedCollateral::verify(&coll, t, *provider).unwrap();
        let good = full_reference(e);
        reference_result(&vc, &quote, t, *provider, &good).unwrap();

        let mut cases: Vec<(ReferenceField, TdxReferenceValues)> = Vec::new();
        let flip48 = |h: accord_core::evidence::tdx::reference::HexBytes<48>| {
            let mut h = h;
            h.0[47] ^= 0x80;
            h
        };
        let mut r = good.clone();
        r.mr_td = r.mr_td.map(flip48);
        cases.push((ReferenceField::MrTd, r));
        let mut r = good.clone();
        r.mr_seam = r.mr_seam.map(flip48);
        cases.push((ReferenceField::MrSeam, r));
        for i in 0..4 {
            let mut r = good.clone();
            if let Some(rtmrs) = r.rtmrs.as_mut() {
                rtmrs[i] = flip48(rtmrs[i]);
            }
            cases.push((ReferenceField::Rtmr(i as u8), r));
        }
        let mut r = good.clone();
        r.xfam.as_mut().unwrap().0[7] ^= 1;
        cases.push((ReferenceField::Xfam, r));
        let mut r = good.clone();
        r.mr_config_id = r.mr_config_id.map(flip48);
        cases.push((ReferenceField::MrConfigId, r));
        let mut r = good.clone();
        r.mr_signer_seam = r.mr_signer_seam.map(flip48);
        cases.push((ReferenceField::MrSignerSeam, r));
        let mut r = good.clone();
        r.td_attributes.as_mut().unwrap().0[7] ^= 1;
        cases.push((ReferenceField::TdAttributes, r));
        let mut r = good.clone();
        r.report_data.as_mut().unwrap().0[0] ^= 1;
        cases.push((ReferenceField::ReportData, r));

        for (field, r) in cases {
            let err = reference_result(&vc, &quote, t, *provider, &r).unwrap_err();
            match &err {
                ReferenceError::Mismatch(m) => {
                    let Mismatch {
                        field: f,
                        expected,
                        actual,
                    } = m.as_ref();
                    assert_eq!(*f, field);
                    assert_ne!(expected, actual);
                    assert!(err.to_string().starts_with(&field.to_string()), "{err}");
                }
                other => panic!("{field}: {other}"),
            }
        }

        // PolicyHash means MRCONFIGID = hash ‖ 16 zero bytes. Set 2's
        // MRCONFIGID is 01 ‖ 32 bytes ‖ zeros, so its first 32 bytes as a
        // policy hash must not match (the zero tail is enforced).
        let mut r = TdxReferenceValues::default();
        let hash = &e.mr_config_id[..64];
        r.policy_hash =
            Some(serde_json::from_value(serde_json::Value::String(hash.into())).unwrap());
        assert!(matches!(
            reference_result(&vc, &quote, t, *provider, &r),
            Err(ReferenceError::Mismatch(m)) if m.field == ReferenceField::MrConfigId
        ));

        let mut r = good.clone();
        r.min_tcb_evaluation_data_number = Some(e.tcb_eval + 1);
        assert_eq!(
            reference_result(&vc, &quote, t, *provider, &r),
            Err(ReferenceError::TcbEvaluationDataNumber {
                minimum: e.tcb_eval + 1,
                actual: e.tcb_eval
            })
        );
        let mut r = good.clone();
        r.accepted_tcb_statuses = Some(vec![TcbStatus::OutOfDate]);
        assert_eq!(
            reference_result(&vc, &quote, t, *provider, &r),
            Err(ReferenceError::TcbStatusNotAccepted(TcbStatus::UpToDate))
        );
        let mut r = good.clone();
        r.allowed_piids = vec![
            serde_json::from_value(serde_json::json!("00112233445566778899aabbccddeeff")).unwrap(),
        ];
        assert!(matches!(
            reference_result(&vc, &quote, t, *provider, &r),
            Err(ReferenceError::PiidNotAllowed(_))
        ));
        // The PCK certificate's own PIID is allowed.
        let verified = verify_with_collateral(&vc, &quote, t, *provider).unwrap();
        let piid = verified
            .to_claims()
            .pck
            .piid
            .expect("Platform CA PCK certificates carry a PIID");
        let mut r = good.clone();
        r.allowed_piids = vec![serde_json::from_value(serde_json::json!(piid)).unwrap()];
        reference_result(&vc, &quote, t, *provider, &r).unwrap();
        let mut r = good.clone();
        r.memory_integrity = true;
        assert!(matches!(
            reference_result(&vc, &quote, t, *provider, &r),
            Err(ReferenceError::MemoryIntegrity(_))
        ));
    }
}

#[test]
fn debug_reference_policy() {
    let set = SETS.iter().find(|s| s.name == "5").unwrap();
    let Some((quote, coll)) = load(set) else {
        return;
    };
    for provider in providers() {
        let t = at(set.at);
        let vc = VerifiedCollateral::verify(&coll, t, *provider).unwrap();
        // Without TdAttributes the DEBUG bit must be off.
        let r = TdxReferenceValues::default();
        assert_eq!(
            reference_result(&vc, &quote, t, *provider, &r),
            Err(ReferenceError::TdAttributeNotAllowed(TdAttribute::Debug))
        );
        // With TdAttributes naming the debug bit, it is accepted.
        let r: TdxReferenceValues =
            serde_json::from_str(r#"{"TdAttributes":"0100001000000000"}"#).unwrap();
        reference_result(&vc, &quote, t, *provider, &r).unwrap();
        // A zero policy hash matches the zero MRCONFIGID.
        let r: TdxReferenceValues = serde_json::from_str(&format!(
            r#"{{"TdAttributes":"0100001000000000","PolicyHash":"{}"}}"#,
            "00".repeat(32)
        ))
        .unwrap();
        reference_result(&vc, &quote, t, *provider, &r).unwrap();
    }
}

#[test]
fn reference_values_json_names() {
    // Wrong lengths and unknown fields are refused.
    assert!(serde_json::from_str::<TdxReferenceValues>(r#"{"MrTd":"00"}"#).is_err());
    assert!(serde_json::from_str::<TdxReferenceValues>(r#"{"Unknown":1}"#).is_err());
    let ok: TdxReferenceValues = serde_json::from_str(
        r#"{"Platform":"TDX","MinTCBEvaluationDataNumber":17,"AcceptedTcbStatuses":["UpToDate","SWHardeningNeeded"],"SMTDisabled":true}"#,
    )
    .unwrap();
    assert_eq!(ok.min_tcb_evaluation_data_number, Some(17));
    assert!(ok.smt_disabled);
}

#[test]
fn collateral_json_round_trips() {
    let Some(bytes) = try_read("tdx/tdx-collateral-1.json") else {
        return;
    };
    let c = Collateral::from_json(&bytes).unwrap();
    assert_eq!(Collateral::from_json(c.to_json().as_bytes()).unwrap(), c);
    assert!(Collateral::from_json(b"{}").is_err());
}

#[test]
fn fuzz_hooks_survive_vectors_and_truncations() {
    for e in EXPECTED {
        let Some(quote) = try_read(e.quote) else {
            return;
        };
        for n in (0..quote.len()).step_by(7) {
            accord_core::evidence::tdx::fuzz_parse_quote(&quote[..n]);
        }
    }
    let Some(bytes) = try_read("tdx/tdx-collateral-1.json") else {
        return;
    };
    for n in (0..bytes.len()).step_by(97) {
        accord_core::evidence::tdx::fuzz_parse_collateral(&bytes[..n]);
    }
    accord_core::evidence::tdx::fuzz_parse_collateral(&bytes);
}

/// Rebuilds a quote with another PEM chain in its certification data (the
/// signature data is covered by no signature, so only lengths change).
fn with_pem(quote: &[u8], pem: &[u8]) -> Vec<u8> {
    let signed = if quote[0] == 4 { 632 } else { 702 };
    let cert = signed + 4 + 128;
    let qe = cert + 6;
    let auth_len = u16::from_le_bytes([quote[qe + 448], quote[qe + 449]]) as usize;
    let inner = qe + 450 + auth_len;
    let mut out = quote[..signed].to_vec();
    let cert_len = 384 + 64 + 2 + auth_len + 6 + pem.len();
    out.extend_from_slice(&u32::try_from(128 + 6 + cert_len).unwrap().to_le_bytes());
    out.extend_from_slice(&quote[signed + 4..cert + 2]);
    out.extend_from_slice(&u32::try_from(cert_len).unwrap().to_le_bytes());
    out.extend_from_slice(&quote[qe..inner + 2]);
    out.extend_from_slice(&u32::try_from(pem.len()).unwrap().to_le_bytes());
    out.extend_from_slice(pem);
    out
}

fn pem_blocks(pem: &str) -> Vec<String> {
    pem.split_inclusive("-----END CERTIFICATE-----\n")
        .map(String::from)
        .collect()
}

#[test]
fn pck_chain_substitutions_are_rejected() {
    let set = &SETS[0];
    let Some((quote, coll)) = load(set) else {
        return;
    };
    let Some(chain) = text("tdx/tdx-pck-chain-v4-1.pem") else {
        return;
    };
    let Some(other_chain) = text("tdx/tdx-pck-chain-v4-3.pem") else {
        return;
    };
    let Some(tcb_chain) = text("tdx/tdx-tcb-signing-chain-4.pem") else {
        return;
    };
    let blocks = pem_blocks(&chain);
    assert_eq!(blocks.len(), 3);
    let (leaf, ca, root) = (&blocks[0], &blocks[1], &blocks[2]);
    let other_leaf = &pem_blocks(&other_chain)[0];
    let tcb_signer = &pem_blocks(&tcb_chain)[0];
    let t = at(set.at);
    for provider in providers() {
        let vc = VerifiedCollateral::verify(&coll, t, *provider).unwrap();
        let run = |pem: String| {
            verify_with_collateral(&vc, &with_pem(&quote, pem.as_bytes()), t, *provider).map(|_| ())
        };
        // The unchanged chain (no trailing NUL) and a re-wrapped one verify.
        run(chain.clone()).unwrap();
        run(chain.replace('\n', "\r\n")).unwrap();
        // Root replaced: not the pinned root.
        assert_eq!(run(format!("{leaf}{ca}{ca}")), Err(TdxError::UntrustedRoot));
        // CA replaced: not the PCK CRL issuer.
        assert_eq!(
            run(format!("{leaf}{tcb_signer}{root}")),
            Err(TdxError::PckCrlIssuerMismatch)
        );
        assert_eq!(
            run(format!("{leaf}{root}{root}")),
            Err(TdxError::PckCrlIssuerMismatch)
        );
        // Extra or missing certificates.
        assert!(run(format!("{leaf}{ca}{root}{root}")).is_err());
        assert!(run(format!("{leaf}{ca}")).is_err());
        assert!(run(format!("{ca}{root}")).is_err());
        // Another platform's PCK leaf: chains fine, but did not sign this QE report.
        assert_eq!(
            run(format!("{other_leaf}{ca}{root}")),
            Err(TdxError::Signature(SignatureRole::QeReport))
        );
        // A certificate that is not a PCK certificate as leaf.
        assert_eq!(
            run(format!("{tcb_signer}{ca}{root}")),
            Err(TdxError::UnexpectedSubject(CertRole::PckLeaf))
        );
    }
}

#[test]
fn certificates_in_the_wrong_role_are_rejected() {
    let set = &SETS[0];
    let Some((quote, coll)) = load(set) else {
        return;
    };
    let t = at(set.at);
    for provider in providers() {
        // The PCK CRL issuer chain offered as TCB signing chain: chains to
        // the root, but is not the TCB signer.
        let mut c = coll.clone();
        c.tcb_info_issuer_chain = c.pck_crl_issuer_chain.clone();
        assert_eq!(
            verify(&quote, &c, t, *provider).unwrap_err(),
            TdxError::UnexpectedSubject(CertRole::TcbInfoSigner)
        );
        // The TCB signing chain offered as PCK CRL issuer chain.
        let mut c = coll.clone();
        c.pck_crl_issuer_chain = c.tcb_info_issuer_chain.clone();
        assert_eq!(
            verify(&quote, &c, t, *provider).unwrap_err(),
            TdxError::UnexpectedSubject(CertRole::PckCrlIssuer)
        );
    }
}

#[test]
fn remembered_platforms_give_the_same_result_and_only_for_identical_chains() {
    for set in SETS.iter().filter(|s| s.accept) {
        let Some((quote, coll)) = load(set) else {
            return;
        };
        for provider in providers() {
            let t = at(set.at);
            let mut vc = VerifiedCollateral::verify(&coll, t, *provider).unwrap();
            let full = verify_with_collateral(&vc, &quote, t, *provider)
                .unwrap()
                .to_claims();
            vc.remember_platform(&quote, t, *provider).unwrap();
            let remembered = verify_with_collateral(&vc, &quote, t, *provider)
                .unwrap()
                .to_claims();
            assert_eq!(
                serde_json::to_value(&full).unwrap(),
                serde_json::to_value(&remembered).unwrap(),
                "set {}",
                set.name
            );
            // A changed byte inside the PCK chain text misses the memo and
            // takes the full path, which refuses it.
            let pem_at = quote
                .windows(27)
                .position(|w| w == b"-----BEGIN CERTIFICATE-----")
                .unwrap();
            let mut other = quote.clone();
            other[pem_at + 100] ^= 0x01;
            assert!(
                verify_with_collateral(&vc, &other, t, *provider).is_err(),
                "set {}",
                set.name
            );
            // The window still applies to remembered platforms.
            assert!(matches!(
                verify_with_collateral(&vc, &quote, shift(set.window.unwrap().1, 1), *provider),
                Err(TdxError::OutsideValidity { .. })
            ));
        }
    }
}
