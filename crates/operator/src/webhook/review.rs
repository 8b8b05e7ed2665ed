//! Reading and writing AdmissionReviews: the only place the webhook touches untrusted bytes
//! from the network, kept free of IO so that it can be fuzzed and property-tested.

use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

/// Decodes a request body as an AdmissionReview of a Pod.
///
/// When it is not one, the error is the response to send: it carries the request's uid when
/// the body is an AdmissionReview of something else (so the API server can match it), and
/// says what is wrong.
///
/// The pods' `managedFields` are dropped as soon as they are decoded: nothing decides on them,
/// the patch (a diff of the pod before and after) then never touches them, and an UPDATE's
/// two copies of them, often larger than the spec, are not cloned and rendered with the pod
/// (the listener prices them as decoded once, see [`super::cost`]).
pub fn decode(body: &[u8]) -> Result<AdmissionRequest<Pod>, Box<AdmissionResponse>> {
    let typed: Result<Result<AdmissionRequest<Pod>, _>, _> =
        serde_json::from_slice::<AdmissionReview<Pod>>(body).map(AdmissionReview::try_into);
    if let Ok(Ok(mut req)) = typed {
        for pod in [&mut req.object, &mut req.old_object].into_iter().flatten() {
            pod.metadata.managed_fields = None;
        }
        return Ok(req);
    }
    // Decode generically only when the typed decode failed, to answer with the request's uid.
    let resp = match serde_json::from_slice::<AdmissionReview<DynamicObject>>(body)
        .map(AdmissionReview::try_into)
    {
        Ok(Ok(generic)) => {
            let generic: AdmissionRequest<DynamicObject> = generic;
            AdmissionResponse::from(&generic).deny("cannot read the pod in this admission request")
        }
        Ok(Err(e)) => AdmissionResponse::invalid(format!("not an AdmissionReview request: {e}")),
        Err(e) => AdmissionResponse::invalid(format!("not an AdmissionReview: {e}")),
    };
    Err(Box::new(resp))
}

/// Decodes a request body as an AdmissionReview of any object (a workload), dropping its
/// `managedFields`; the error is the response to send.
pub fn decode_any(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, Box<AdmissionResponse>> {
    match serde_json::from_slice::<AdmissionReview<DynamicObject>>(body)
        .map(AdmissionReview::try_into)
    {
        Ok(Ok(req)) => {
            let mut req: AdmissionRequest<DynamicObject> = req;
            for o in [&mut req.object, &mut req.old_object].into_iter().flatten() {
                o.metadata.managed_fields = None;
            }
            Ok(req)
        }
        Ok(Err(e)) => Err(Box::new(AdmissionResponse::invalid(format!(
            "not an AdmissionReview request: {e}"
        )))),
        Err(e) => Err(Box::new(AdmissionResponse::invalid(format!(
            "not an AdmissionReview: {e}"
        )))),
    }
}

/// The answer to a review that is not decoded because it would cost more memory than the
/// webhook allows one request: a denial saying `message`, with the request's uid read without
/// decoding anything else (ignored values allocate nothing); `None` when the body has no uid to
/// answer to.
pub fn deny_undecoded(body: &[u8], message: &str) -> Option<serde_json::Value> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        request: Uid,
    }
    #[derive(serde::Deserialize)]
    struct Uid {
        uid: String,
    }
    let uid = serde_json::from_slice::<Envelope>(body).ok()?.request.uid;
    let mut resp = AdmissionResponse::invalid(message);
    resp.uid = uid;
    Some(encode(resp.into_review()))
}

/// The review as JSON, with the patch as base64 as the API documents it (kube-rs writes the
/// bytes as a JSON array, which the API server also reads, at four times the size).
pub fn encode(review: AdmissionReview<DynamicObject>) -> serde_json::Value {
    use base64::Engine as _;
    let mut v = serde_json::to_value(&review).unwrap_or_default();
    if let Some(patch) = review.response.as_ref().and_then(|r| r.patch.as_ref()) {
        v["response"]["patch"] = base64::engine::general_purpose::STANDARD
            .encode(patch)
            .into();
    }
    v
}
