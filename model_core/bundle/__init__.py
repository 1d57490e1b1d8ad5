"""The model bundle: the only contract between the trainer and the service.

    models/<name>/<version>/{encoder.onnx, decoder.onnx, discriminator_features.onnx, manifest.json}
                             [class_means.npy: labelled training data only]
                             [prior.npz: the fitted latent prior]
    models/<name>/LATEST     (text: the version served by default)

A bundle is written into a temporary folder beside its target, fsynced, renamed into place, and
only then is LATEST replaced (also by rename), so a reader never sees half a bundle. Reading
verifies every checksum, the format version and the ONNX signatures. This package imports no
torch: the service image has none.

    schema.py   file names, manifest.json as pydantic models, the recommended session options
    store.py    names, checksums, atomic publishing, LATEST resolution, manifest reading
    loading.py  a bundle's manifest, checksums and ONNX signatures checked together
    class_means.py  class_means.npy, the per-class mean latents, written and read
    prior.py    prior.npz, the fitted latent prior (a Gaussian mixture): written, read, sampled, scored
"""

from model_core.bundle.class_means import class_means_bytes, read_class_means
from model_core.bundle.loading import check_manifest, check_signature, load_bundle, verify
from model_core.bundle.prior import LatentPrior, Mixture, prior_bytes, read_prior
from model_core.bundle.schema import (
    CLASS_MEANS,
    FORMAT_VERSION,
    LATEST,
    MANIFEST,
    NETWORK_FILES,
    NETWORKS,
    PRIOR,
    Bundle,
    BundleError,
    ImageSpec,
    Manifest,
    OrtSessionOptions,
    Preprocessing,
    PriorInfo,
    ResizeFilter,
    Signature,
    TensorSpec,
    Training,
    first_error,
    network_file,
    network_of,
    network_signatures,
)
from model_core.bundle.store import (
    NAME_PATTERN,
    default_version,
    fsync_dir,
    list_bundles,
    list_versions,
    read_manifest,
    resolve,
    set_latest,
    sha256_file,
    validate_name,
    verify_files,
    write_bundle,
)

__all__ = [
    "CLASS_MEANS",
    "FORMAT_VERSION",
    "LATEST",
    "MANIFEST",
    "NAME_PATTERN",
    "NETWORKS",
    "NETWORK_FILES",
    "PRIOR",
    "Bundle",
    "BundleError",
    "ImageSpec",
    "LatentPrior",
    "Manifest",
    "Mixture",
    "OrtSessionOptions",
    "Preprocessing",
    "PriorInfo",
    "ResizeFilter",
    "Signature",
    "TensorSpec",
    "Training",
    "check_manifest",
    "check_signature",
    "class_means_bytes",
    "default_version",
    "first_error",
    "fsync_dir",
    "list_bundles",
    "list_versions",
    "load_bundle",
    "network_file",
    "network_of",
    "network_signatures",
    "prior_bytes",
    "read_class_means",
    "read_manifest",
    "read_prior",
    "resolve",
    "set_latest",
    "sha256_file",
    "validate_name",
    "verify",
    "verify_files",
    "write_bundle",
]
