#!/usr/bin/env cwl-runner
# Variant calling on one region: bcftools mpileup | bcftools call (multiallelic
# caller, variant sites only), written as a bgzipped VCF with its index.
cwlVersion: v1.2
class: Workflow
label: variant calling on a region (bcftools mpileup + call)
inputs:
  reference:
    type: File
    secondaryFiles: [.fai]
  alignments:
    type: File
    secondaryFiles: [.bai]
  region:
    type: string
    label: samtools-style region, e.g. chr1:1-20000
outputs:
  calls:
    type: File
    outputSource: call/calls
    secondaryFiles: [.csi]
steps:
  mpileup:
    run:
      class: CommandLineTool
      hints:
        DockerRequirement: {dockerPull: "quay.io/biocontainers/bcftools:1.21--h3a4d415_1"}
      baseCommand: [bcftools, mpileup, -Ou, -a, "AD,DP"]
      arguments: [-o, pileup.bcf]
      inputs:
        reference: {type: File, secondaryFiles: [.fai], inputBinding: {prefix: -f, position: 1}}
        region: {type: string, inputBinding: {prefix: -r, position: 2}}
        alignments: {type: File, secondaryFiles: [.bai], inputBinding: {position: 3}}
      outputs:
        pileup: {type: File, outputBinding: {glob: pileup.bcf}}
    in: {reference: reference, region: region, alignments: alignments}
    out: [pileup]
  call:
    run:
      class: CommandLineTool
      hints:
        DockerRequirement: {dockerPull: "quay.io/biocontainers/bcftools:1.21--h3a4d415_1"}
      requirements:
        ShellCommandRequirement: {}
      baseCommand: [bcftools, call, -mv, -Oz, -o, calls.vcf.gz]
      arguments:
        - {valueFrom: "&&", shellQuote: false, position: 2}
        - {valueFrom: "bcftools index calls.vcf.gz", shellQuote: false, position: 3}
      inputs:
        pileup: {type: File, inputBinding: {position: 1}}
      outputs:
        calls: {type: File, secondaryFiles: [.csi], outputBinding: {glob: calls.vcf.gz}}
    in: {pileup: mpileup/pileup}
    out: [calls]
