#!/usr/bin/env python3
"""Writes the synthetic seed corpus for the fuzz targets.

The seeds are structurally plausible but carry no real signatures: the real
hardware vectors in ../shared/testdata must not be committed. Re-run with
`python3 core/fuzz/make_seeds.py`; it is deterministic.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def snp_report(version, cpuid):
    r = bytearray(0x4A0)
    struct.pack_into("<I", r, 0x00, version)
    struct.pack_into("<Q", r, 0x08, 0x30000)  # policy: SMT, reserved bit 17
    struct.pack_into("<I", r, 0x34, 1)  # ECDSA P-384 with SHA-384
    struct.pack_into("<Q", r, 0x38, 0x5417000000000009)
    struct.pack_into("<Q", r, 0x40, 0x1)
    for off in (0x50, 0x90, 0xC0):
        r[off:off + 16] = bytes(range(1, 17))
    struct.pack_into("<Q", r, 0x180, 0x5417000000000009)
    if version >= 3:
        r[0x188], r[0x189], r[0x18A] = cpuid
    r[0x1A0:0x1A0 + 64] = bytes(range(64))
    struct.pack_into("<Q", r, 0x1E0, 0x5417000000000009)
    struct.pack_into("<Q", r, 0x1F0, 0x5417000000000009)
    r[0x2A0:0x2A0 + 48] = b"\x11" * 48  # r
    r[0x2E8:0x2E8 + 48] = b"\x22" * 48  # s
    return bytes(r)


FAKE_PEM = (
    b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"
    b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"
    b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n\x00"
)


def tdx_quote(version):
    header = struct.pack("<HHIHH", version, 2, 0x81, 0, 0)
    header += bytes.fromhex("939a7233f79c4ca9940a0db3957f0607") + b"\x00" * 20
    if version == 4:
        head = header + b"\x00" * 584
    else:
        head = header + struct.pack("<HI", 3, 648) + b"\x00" * 648
    inner = struct.pack("<HI", 5, len(FAKE_PEM)) + FAKE_PEM
    qe = b"\x00" * 384 + b"\x01" * 64 + struct.pack("<H", 32) + b"\x02" * 32 + inner
    sig_data = b"\x03" * 64 + b"\x04" * 64 + struct.pack("<HI", 6, len(qe)) + qe
    return head + struct.pack("<I", len(sig_data)) + sig_data


def collateral():
    tcb_info = {
        "id": "TDX", "version": 3, "issueDate": "2025-06-19T10:16:03Z", "nextUpdate": "2025-07-19T10:16:03Z",
        "fmspc": "B0C06F000000", "pceId": "0000", "tcbType": 0, "tcbEvaluationDataNumber": 17,
        "tdxModule": {"mrsigner": "00" * 48, "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF"},
        "tdxModuleIdentities": [{"id": "TDX_01", "mrsigner": "00" * 48, "attributes": "0000000000000000",
                                 "attributesMask": "FFFFFFFFFFFFFFFF",
                                 "tcbLevels": [{"tcb": {"isvsvn": 3}, "tcbDate": "2024-03-13T00:00:00Z",
                                                "tcbStatus": "UpToDate"}]}],
        "tcbLevels": [{"tcb": {"sgxtcbcomponents": [{"svn": 2}] * 16, "pcesvn": 11,
                               "tdxtcbcomponents": [{"svn": 1}] * 16},
                       "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate"},
                      {"tcb": {"sgxtcbcomponents": [{"svn": 0}] * 16, "pcesvn": 5,
                               "tdxtcbcomponents": [{"svn": 0}] * 16},
                       "tcbDate": "2018-01-04T00:00:00Z", "tcbStatus": "OutOfDate",
                       "advisoryIDs": ["INTEL-SA-00088"]}],
    }
    qe_identity = {
        "id": "TD_QE", "version": 2, "issueDate": "2025-06-19T10:32:27Z", "nextUpdate": "2025-07-19T10:32:27Z",
        "tcbEvaluationDataNumber": 17, "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
        "attributes": "11000000000000000000000000000000", "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
        "mrsigner": "DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5", "isvprodid": 2,
        "tcbLevels": [{"tcb": {"isvsvn": 4}, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate"}],
    }
    pem = FAKE_PEM[:-1].decode()
    doc = {
        "pck_crl_issuer_chain": pem, "root_ca_crl": "3000", "pck_crl": "3000",
        "tcb_info_issuer_chain": pem, "tcb_info": json.dumps(tcb_info, separators=(",", ":")),
        "tcb_info_signature": "00" * 64, "qe_identity_issuer_chain": pem,
        "qe_identity": json.dumps(qe_identity, separators=(",", ":")), "qe_identity_signature": "00" * 64,
    }
    return json.dumps(doc).encode()


for v in (2, 3, 5):
    write("snp_report", f"report-v{v}.bin", snp_report(v, (0x1A, 0x02, 0x01) if v == 5 else (0x19, 0x11, 0x01)))
for v in (4, 5):
    write("tdx_quote", f"quote-v{v}.bin", tdx_quote(v))
write("tdx_collateral", "collateral.json", collateral())


def history_seed(selector, size_a, size_b, n_hashes):
    """Selector byte, two big-endian sizes, then 32-byte nodes."""
    nodes = b"".join(bytes([i]) * 32 for i in range(n_hashes))
    return bytes([selector]) + struct.pack(">QQ", size_a, size_b) + nodes


for selector in range(4):
    write("history", f"seed-{selector}.bin", history_seed(selector, 3, 7, 5))


def manifest_seed(owners, tdx):
    """A realistic manifest: coordinator and workload policies, SNP (and
    TDX) reference values, owner and seed-share keys (synthetic)."""
    ed25519 = "302a300506032b6570032100" + "11" * 32
    x25519 = ["302a300506032b656e032100" + f"{b:02x}" * 32 for b in (0x21, 0x22, 0x23)]
    doc = {
        "Policies": {
            "ef" * 32: {"SANs": ["coordinator", "coordinator.default.svc"], "Role": "coordinator"},
            "01" * 32: {"SANs": ["web", "10.0.0.1", "spiffe://accord/web"], "WorkloadSecretID": "apps/v1/Deployment/default/web"},
            "AB" * 32: {"SANs": ["*.db.default.svc.cluster.local"]},
        },
        "ReferenceValues": {"snp": [{
            "ProductName": "Milan", "TrustedMeasurement": "05c5" * 24,
            "MinimumTCB": {"BootloaderVersion": 3, "TEEVersion": 0, "SNPVersion": 23, "MicrocodeVersion": 213},
            "GuestPolicy": {"SMT": True, "Debug": False},
        }]},
        "WorkloadOwnerPubKeys": [ed25519] if owners else [],
        "SeedshareOwnerPubKeys": x25519 if owners else [],
        "SeedshareThreshold": 2 if owners else 1,
    }
    if tdx:
        doc["ReferenceValues"]["tdx"] = [{
            "MrTd": "11" * 48, "MrSeam": "22" * 48, "Rtmrs": ["33" * 48] * 4,
            "Xfam": "e702060000000000", "MinTCBEvaluationDataNumber": 17,
        }]
    return json.dumps(doc, indent=1).encode()


write("manifest", "realistic.json", manifest_seed(True, True))
write("manifest", "immutable-snp.json", manifest_seed(False, False))
write("manifest", "duplicate-key.json", b'{"Policies":{},"Policies":{}}')


# Wire protocol: selector byte (even: user API limit, odd: mesh), then a
# whole frame (the golden frames of docs/protocol.md, and a SetManifest
# with a realistic manifest).
for name, frame_hex in [
    ("hello", "00000003010100"),
    ("hello-accepted", "000000020001"),
    ("new-mesh-cert", "0000000100"),
    ("get-manifests", "00000006010103020002"),
    ("set-manifest", "0000000a00027b7d010170000000"),
    ("error", "0000000403010178"),
    ("peer-recover", "0000000101"),
    ("shim-snapshot", "0000000100"),
    ("shim-watch-latest", "000000040200a01f"),
]:
    write("protocol", name + ".bin", bytes([0]) + bytes.fromhex(frame_hex))
manifest = manifest_seed(True, True)
body = bytes([0]) + bytes([len(manifest) & 0x7F | 0x80, len(manifest) >> 7]) + manifest + bytes([1, 1, 0x70, 0, 0, 0])
write("protocol", "set-manifest-realistic.bin", bytes([0]) + struct.pack(">I", len(body)) + body)
