//! Every request message decoded from arbitrary bytes and validated by the broker: no panic.
#![no_main]

use deconflict_broker::ledger::Policy;
use deconflict_broker::secrets::pepper::Pepper;
use deconflict_broker::grpc::validate;
use deconfliction_proto::v1;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let pepper = Pepper::from_bytes([7; 32]);
    let policy = Policy::default();
    if let Ok(r) = v1::RegisterOperationRequest::decode(data) {
        let _ = validate::registration(&r, &pepper, &policy);
    }
    if let Ok(r) = v1::AmendOperationRequest::decode(data) {
        let _ = validate::amendment(&r, &pepper, &policy);
    }
    if let Ok(r) = v1::CheckRequest::decode(data) {
        let _ = validate::check(&r, &pepper, &policy);
    }
    if let Ok(r) = v1::DiscloseRequest::decode(data) {
        let _ = deconflict_broker::ledger::validate_card(r.card.as_ref());
    }
    let _ = v1::SendMessageRequest::decode(data);
    let _ = v1::EvaluateRequest::decode(data);
    let _ = v1::SubscribeRequest::decode(data);
});
