# GAN outliers: a small DCGAN trained on the ID training set and sampled with latent N(0, sigma^2)
# per sigma the runs ask for, or the published samples-<sigma>.npz (benchmark.gan.source). Either
# becomes the stored pool data/gan/<sigma>.npz that runs with `outliers: {source: gan}` train on.


rule train_gan:
    input:
        train=f"{OUT}/data/train.npz",
    output:
        model=f"{OUT}/gan/generator.pt",
        log=f"{OUT}/gan/train_log.csv",
    log:
        f"{LOGS}/gan/train.log",
    benchmark:
        f"{LOGS}/benchmarks/gan/train.tsv"
    conda:
        "../envs/oodflow.yaml"
    threads: TORCH_THREADS
    resources:
        gpu=1,
        runtime=gan_resource("runtime"),
        mem_mb=gan_resource("mem_mb"),
        cpus_per_task=gan_resource("cpus_per_task"),
    params:
        gan=gan_params,
        checkpoint=f"{OUT}/gan/checkpoint-last.pt",
    script:
        "../scripts/train_gan.py"


rule sample_gan:
    input:
        model=f"{OUT}/gan/generator.pt",
    output:
        f"{OUT}/gan/samples-{{sigma}}.npz",
    log:
        f"{LOGS}/gan/sample_{{sigma}}.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    resources:
        gpu=1,
        runtime=gan_resource("runtime"),
        mem_mb=gan_resource("mem_mb"),
        cpus_per_task=gan_resource("cpus_per_task"),
    params:
        samples=config["benchmark"]["gan"]["samples"],
    script:
        "../scripts/sample_gan.py"


rule gan_pool:
    input:
        unpack(gan_pool_inputs),
    output:
        npz=f"{OUT}/data/gan/{{sigma}}.npz",
        sidecar=f"{OUT}/data/gan/{{sigma}}.json",
    log:
        f"{LOGS}/data/gan_pool_{{sigma}}.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        source=config["benchmark"]["gan"]["source"],
    script:
        "../scripts/gan_pool.py"


rule gan_samples_figure:
    input:
        unpack(gan_figure_inputs),
    output:
        report(
            f"{OUT}/figures/gan_samples.png",
            caption="../report/gan_samples.rst",
            category=CAT_AOE,
        ),
    log:
        f"{LOGS}/gan/samples_figure.log",
    conda:
        "../envs/oodflow.yaml"
    threads: 1
    params:
        dpi=config["plots"]["dpi"],
    script:
        "../scripts/data_samples.py"
