# The embedded benchmark, materialised as versionable .npz files with JSON sidecars (counts, sources, sha256).


rule build_id:
    input:
        unpack(id_source),
    output:
        **{split: f"{OUT}/data/{split}.npz" for split in ID_SPLITS},
        sidecars=[f"{OUT}/data/{split}.json" for split in ID_SPLITS],
    log:
        f"{LOGS}/data/build_id.log",
    conda:
        "../envs/oodflow.yaml"
    threads: DECODE_THREADS
    params:
        data=id_data_params,
    script:
        "../scripts/build_id.py"


rule build_ood:
    input:
        unpack(ood_source),
    output:
        npz=f"{OUT}/data/ood/{{ood}}.npz",
        sidecar=f"{OUT}/data/ood/{{ood}}.json",
    log:
        f"{LOGS}/data/build_ood_{{ood}}.log",
    conda:
        "../envs/oodflow.yaml"
    threads: DECODE_THREADS
    params:
        data=ood_data_params,
    script:
        "../scripts/build_ood.py"


rule build_aux:
    input:
        unpack(aux_source),
    output:
        npz=f"{OUT}/data/aux.npz",
        sidecar=f"{OUT}/data/aux.json",
    log:
        f"{LOGS}/data/build_aux.log",
    conda:
        "../envs/oodflow.yaml"
    threads: DECODE_THREADS
    params:
        data=aux_data_params,
    script:
        "../scripts/build_aux.py"


rule data_manifest:
    input:
        [f"{OUT}/data/{split}.json" for split in ID_SPLITS],
        expand(f"{OUT}/data/ood/{{ood}}.json", ood=OOD_SETS),
        expand(f"{OUT}/data/{{aux}}.json", aux=AUX_SETS),
    output:
        f"{OUT}/data/manifest.json",
    log:
        f"{LOGS}/data/manifest.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    script:
        "../scripts/data_manifest.py"


rule data_samples:
    input:
        **{split: f"{OUT}/data/{split}.npz" for split in ID_SPLITS},
        **{ood: f"{OUT}/data/ood/{ood}.npz" for ood in OOD_SETS},
        **{aux: f"{OUT}/data/{aux}.npz" for aux in AUX_SETS},
    output:
        report(
            f"{OUT}/figures/data_samples.png",
            caption="../report/data_samples.rst",
            category=CAT_DATA,
        ),
    log:
        f"{LOGS}/data/samples.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        dpi=config["plots"]["dpi"],
    script:
        "../scripts/data_samples.py"
