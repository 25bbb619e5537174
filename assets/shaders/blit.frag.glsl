#version 330
// Shows an image texture over the whole viewport (linear filtering upsamples low-res frames).
uniform sampler2D u_image;
in vec2 v_uv;
out vec4 frag;

void main() {
    frag = vec4(texture(u_image, v_uv).rgb, 1.0);
}
