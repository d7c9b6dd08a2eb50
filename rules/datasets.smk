# Paper-scale datasets: verified downloads (mirrors, retries, checksums), safe unpacking, parsing
# into the prepared form. Only jobs that a config asks for run; the embedded default needs none.
# DVC versions downloads/, prepared/ and (list form) raw/; Snakemake reads them as ancient().


rule download_dataset:
    output:
        "resources/datasets/{ds}/downloads/{filename}",
    log:
        "logs/datasets/{ds}/download_{filename}.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        # a smoke run downloads fakes from its smoke mirror only (oodflow.mirrors)
        smoke=config.get("smoke", False),
    script:
        "../scripts/download_dataset.py"


rule prepare_dataset:
    input:
        dataset_downloads,
    output:
        raw=directory("resources/datasets/{ds}/raw"),
        prepared=directory("resources/datasets/{ds}/prepared"),
    log:
        "logs/datasets/{ds}/prepare.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        parser_args=dataset_params,
        # files the user supplies by hand (NUS-WIDE's images: user/Flickr) live outside the outputs,
        # which Snakemake deletes before the job; the job links them into raw/. Not an input, so that
        # a config plans (snakemake -n) without them; a missing one fails the job with a clear message.
        user_dir="resources/datasets/{ds}/user",
    script:
        "../scripts/prepare_dataset.py"


# Pretrained weights (oodflow.models.weights): one verified download per file, through the same
# path as the datasets (mirrors as <base>/<name>/<file>, OODFLOW_MIRRORS_ONLY, pinned sha256);
# every job that builds a `pretrained: true` model reads the file. DVC versions resources/weights/.
rule download_weights:
    output:
        "resources/weights/{weights}/{filename}",
    log:
        "logs/weights/{weights}/download_{filename}.log",
    wildcard_constraints:
        weights="|".join(WEIGHTS.names()),
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        smoke=config.get("smoke", False),
    script:
        "../scripts/download_weights.py"


# Every catalog dataset the config needs, downloaded and prepared (then version them with
# `python -m oodflow.datasets track <config>`): `snakemake --cores 4 datasets --configfile ...`.
rule datasets:
    input:
        [folder for ds in CATALOG_DATASETS for folder in dataset_folders(ds).values()],
        [str(weights_file(name)) for name in CONFIG_WEIGHTS],
